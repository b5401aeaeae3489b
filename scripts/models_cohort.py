"""Snakemake adapter: assemble the cohort (table, QC exclusions, stacked arrays)."""

from pathlib import Path

from neurofusion.logs import run_step
from neurofusion.training.cohort import assemble_cohort

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_step(
    sm.log[0],
    assemble_cohort,
    participants=sm.input.participants,
    exclusions=sm.input.exclusions,
    deriv_root=sm.params.deriv,
    out_dir=Path(sm.output.table).parent,
    positive_group=sm.params.positive_group,
    modalities=sm.params.modalities,
    subject_modalities=sm.params.subject_modalities,
    resolution_mm=sm.params.resolution_mm,
    func_resolution_mm=sm.params.func_resolution_mm,
    atlas=sm.params.atlas,
)
