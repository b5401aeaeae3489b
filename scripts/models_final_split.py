"""Snakemake adapter: the final models' split (every subject trains)."""

from pathlib import Path

from neurofusion.logs import run_step
from neurofusion.training.run import create_final_split

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_step(
    sm.log[0],
    create_final_split,
    cohort_dir=Path(sm.input.table).parent,
    path=sm.output[0],
    seed=sm.params.seed,
    validation_fraction=sm.params.validation_fraction,
)
