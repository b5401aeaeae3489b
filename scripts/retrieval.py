"""Snakemake adapter: the feature library and its retrieval scores."""

from neurofusion.logs import run_step
from neurofusion.retrieval.stage import run_retrieval

sm = snakemake  # noqa: F821 (injected by Snakemake)
n = sm.params.n_splits
run_step(
    sm.log[0],
    run_retrieval,
    cohort_dir=sm.params.cohort,
    split_files=sm.input.splits,
    model_files={
        name: sm.input.models[i * n : (i + 1) * n] for i, name in enumerate(sm.params.encoders)
    },
    participants_tsv=sm.input.participants,
    outputs=dict(sm.output.items()),
    k=sm.params.k,
    final_files=dict(zip(sm.params.encoders, sm.input.final, strict=True)),
    final_split=sm.input.final_split,
    n_boot=sm.params.bootstrap,
    seed=sm.params.seed,
)
