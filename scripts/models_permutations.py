"""Snakemake adapter: label-permutation null distribution of one model."""

from pathlib import Path

from neurofusion.logs import run_step
from neurofusion.training.run import run_permutations
from neurofusion.training.settings import TrainSettings

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_step(
    sm.log[0],
    run_permutations,
    model=sm.wildcards.model,
    cohort_dir=Path(sm.input.table).parent,
    split_paths=list(sm.input.splits),
    n_permutations=sm.params.n_permutations,
    settings=TrainSettings.from_config(sm.params.models, threads=sm.threads),
    out=sm.output[0],
)
