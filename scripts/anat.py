"""Snakemake adapter: anatomical preprocessing of one subject."""

from neurofusion.logs import run_step
from neurofusion.preprocessing.anat import run_anat

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_step(
    sm.log[0],
    run_anat,
    subject=sm.wildcards.subject,
    t1w=sm.input.t1w,
    deriv_root=sm.params.deriv,
    work_dir=sm.params.work,
    threads=sm.threads,
    seed=sm.params.seed,
    syn_resolution_mm=sm.params.syn_resolution_mm,
)
