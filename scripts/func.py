"""Snakemake adapter: functional preprocessing of one subject."""

from neurofusion.logs import run_step
from neurofusion.preprocessing.anat_outputs import anat_outputs
from neurofusion.preprocessing.func import FuncSettings, run_func

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_step(
    sm.log[0],
    run_func,
    subject=sm.wildcards.subject,
    bold=sm.input.bold,
    sidecar=sm.input.sidecar,
    anat=anat_outputs(sm.params.deriv, sm.wildcards.subject),
    deriv_root=sm.params.deriv,
    work_dir=sm.params.work,
    settings=FuncSettings.from_config(sm.params.func, seed=sm.params.seed),
    threads=sm.threads,
)
