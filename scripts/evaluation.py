"""Snakemake adapter: metrics, tests, figures and summary of every model."""

from pathlib import Path

from neurofusion.evaluation.report import evaluate
from neurofusion.logs import run_step

sm = snakemake  # noqa: F821 (injected by Snakemake)


def by_model(paths, models):
    """Group fold and permutation files by the model folder they sit in."""
    return {name: [p for p in paths if Path(p).parts[-3] == name] for name in models}


run_step(
    sm.log[0],
    evaluate,
    predictions=by_model(sm.input.predictions, sm.params.models),
    histories=by_model(sm.input.histories, sm.params.deep),
    permutations=by_model(sm.input.permutations, sm.params.permuted),
    single_modality=sm.params.single_modality,
    skipped=sm.params.skipped,
    out=dict(sm.output.items()),
    class_names=tuple(sm.params.groups),
    n_boot=sm.params.bootstrap,
    seed=sm.params.seed,
)
