"""Snakemake adapter: one range of a model's label-permutation null distribution."""

from pathlib import Path

from neurofusion.logs import run_step
from neurofusion.training.permutations import run_permutations
from neurofusion.training.settings import TrainSettings

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_step(
    sm.log[0],
    run_permutations,
    model=sm.wildcards.model,
    cohort_dir=Path(sm.input.table).parent,
    split_paths=list(sm.input.splits),
    permutations=range(int(sm.wildcards.first), int(sm.wildcards.last) + 1),
    settings=TrainSettings.from_config(sm.params.models, threads=sm.threads),
    out=sm.output[0],
)
