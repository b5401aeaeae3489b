"""Snakemake adapter: simulate one subject's DICOM and ground truth."""

from neurofusion.logs import run_step
from neurofusion.simulate import settings_from_config, simulate_subject

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_step(
    sm.log[0],
    simulate_subject,
    participant_id=f"sub-{sm.wildcards.subject}",
    group=sm.params.group,
    settings=settings_from_config(sm.params.simulate),
    dicom_dir=sm.output.dicom,
    truth_dir=sm.output.truth,
)
