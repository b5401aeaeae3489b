"""Snakemake adapter: anatomical QC metrics of one subject."""

from neurofusion.logs import run_step
from neurofusion.qc.anat_metrics import write_anat_qc

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_step(
    sm.log[0],
    write_anat_qc,
    subject=sm.wildcards.subject,
    deriv_root=sm.params.deriv,
    output=sm.output[0],
)
