"""Snakemake adapter: the simulated cohort's participants.tsv."""

from neurofusion.logs import run_step
from neurofusion.simulate import settings_from_config, write_participants

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_step(
    sm.log[0],
    write_participants,
    settings=settings_from_config(sm.params.simulate),
    path=sm.output[0],
)
