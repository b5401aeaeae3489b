"""Snakemake adapter: group QC table, exclusions, region flags and QC-FC."""

from neurofusion.connectivity.settings import ConnectivitySettings
from neurofusion.logs import run_step
from neurofusion.qc.group import run_group_qc
from neurofusion.qc.motion import QCSettings

sm = snakemake  # noqa: F821 (injected by Snakemake)
keys = [key for key in ("fisherz", "coverage", "confounds", "qc") if hasattr(sm.input, key)]
run_step(
    sm.log[0],
    run_group_qc,
    subjects={
        subject: {key: sm.input[key][index] for key in keys}
        for index, subject in enumerate(sm.params.subjects)
    },
    groups=sm.params.groups,
    output_dir=sm.params.output_dir,
    qc_settings=QCSettings.from_config(sm.params.qc),
    connectivity=ConnectivitySettings.from_config(sm.params.connectivity),
)
