"""Snakemake adapter: the cross-validation split files."""

from pathlib import Path

from neurofusion.logs import run_step
from neurofusion.training.run import create_splits

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_step(
    sm.log[0],
    create_splits,
    cohort_dir=Path(sm.input.table).parent,
    paths=list(sm.output),
    folds=sm.params.folds,
    repeats=sm.params.repeats,
    seed=sm.params.seed,
    validation_fraction=sm.params.validation_fraction,
)
