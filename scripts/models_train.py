"""Snakemake adapter: train one model on one cross-validation split."""

from pathlib import Path

from neurofusion.logs import run_step
from neurofusion.training.layout import FINAL
from neurofusion.training.registry import MODELS
from neurofusion.training.run import run_fold
from neurofusion.training.settings import TrainSettings

sm = snakemake  # noqa: F821 (injected by Snakemake)
model = sm.wildcards.model
branches = {
    name: Path(sm.input[f"{name}_predictions"]).parent
    for name in MODELS[model].branches
    if hasattr(sm.input, f"{name}_predictions")
}
run_step(
    sm.log[0],
    run_fold,
    model=model,
    cohort_dir=Path(sm.input.table).parent,
    split_path=sm.input.split,
    fold=int(sm.wildcards.fold) if hasattr(sm.wildcards, "fold") else FINAL,
    out=dict(sm.output.items()),
    settings=TrainSettings.from_config(sm.params.models, threads=sm.threads),
    branch_dirs=branches or None,
)
