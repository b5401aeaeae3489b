"""Snakemake adapter: dataset-level files of the BIDS raw data."""

from pathlib import Path

from neurofusion.bids.dataset import write_raw_dataset
from neurofusion.bids.participants import load_participants
from neurofusion.logs import run_step

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_step(
    sm.log[0],
    write_raw_dataset,
    participants=load_participants(sm.input[0], positive_group=sm.params.positive_group),
    root=Path(sm.output.description).parent,
    name="neurofusion raw data",
)
