"""Label-permutation tests of a model's whole pipeline: which permutations each job runs,
the shuffled labels, and the null distribution of the cross-validated scores."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from neurofusion.fileio import atomic_path
from neurofusion.preprocessing.threads import limit_threads
from neurofusion.training.cohort import Cohort
from neurofusion.training.linear import fit_labels, linear_inputs
from neurofusion.training.registry import MODELS
from neurofusion.training.run import cross_validated_scores, fold_seed, load_fold, pooled_scores
from neurofusion.training.settings import TrainSettings
from neurofusion.training.splits import split_seed

log = logging.getLogger(__name__)

#: Seed key of the label permutations (with the permutation's index).
PERMUTATION_SEED_KEY = 7919


def permutation_kind(model: str) -> str:
    """Which ``models.permutations`` count applies to ``model``: ``deep`` for the torch
    models and those built on them (``late_fusion``), else ``linear``."""
    spec = MODELS[model]
    return "deep" if spec.deep or spec.branches else "linear"


def permutation_chunks(n_permutations: int, per_job: int) -> list[tuple[int, int]]:
    """Permutations 1..n in jobs of ``per_job``: [(first, last), ...], both inclusive.

    A job's range does not depend on ``n_permutations`` except for the last one, so raising
    the count keeps the finished jobs' files.
    """
    if per_job < 1:
        raise ValueError(f"permutations per job must be >= 1, got {per_job}")
    return [
        (first, min(first + per_job - 1, n_permutations))
        for first in range(1, n_permutations + 1, per_job)
    ]


def permuted_labels(labels: np.ndarray, seed: int, permutation: int) -> np.ndarray:
    """The cohort's labels shuffled for permutation ``permutation`` (>= 1), from a seed of
    its own, so that any range of permutations can run in any job."""
    rng = np.random.default_rng(split_seed(seed, PERMUTATION_SEED_KEY, permutation))
    return rng.permutation(labels)


def permutation_scores(
    model: str,
    cohort_dir: str | Path,
    split_paths: Sequence[str | Path],
    permutations: Sequence[int],
    settings: TrainSettings,
) -> pd.DataFrame:
    """Label-permutation null distribution of ``model``'s cross-validated performance.

    For each permutation the labels of the whole cohort are shuffled
    (:func:`permuted_labels`) and the entire pipeline (every fitting step, branch models
    included) reruns on every split of ``split_paths`` (:func:`cross_validated_scores`),
    scored against the shuffled labels. A linear model's steps that see no labels
    (features, scaling, the basis of :class:`~neurofusion.training.linear.LinearInputs`)
    are computed once per split and reused by every permutation; its inner CV and
    classifiers rerun, so the scores are those of the whole pipeline.

    Parameters
    ----------
    permutations : sequence of int
        Indices (>= 1) of the permutations to run, e.g. ``range(1, 21)``.

    Returns
    -------
    pandas.DataFrame
        ``permutation``, ``balanced_accuracy``, ``accuracy``, ``auc``.
    """
    limit_threads(settings.threads)
    cohort = Cohort(cohort_dir)
    if permutation_kind(model) == "linear":
        scorer = _linear_scorer(model, cohort, split_paths, settings)
    else:

        def scorer(labels: np.ndarray, p: int) -> dict[str, float]:
            return cross_validated_scores(model, cohort, split_paths, settings, labels, p)

    rows = []
    for p in permutations:
        scores = scorer(permuted_labels(cohort.labels, settings.seed, p), p)
        rows.append({"permutation": p, **scores})
        log.info("%s permutation %d (%d of %d): %s", model, p, len(rows), len(permutations),
                 rows[-1])  # fmt: skip
    return pd.DataFrame(rows, columns=["permutation", "balanced_accuracy", "accuracy", "auc"])


def _linear_scorer(
    model: str, cohort: Cohort, split_paths: Sequence[str | Path], settings: TrainSettings
):
    """``score(labels, permutation)`` of a linear model with each split's
    :class:`~neurofusion.training.linear.LinearInputs` computed once."""
    folds = []
    for k, path in enumerate(split_paths):
        fold = load_fold(cohort, path, settings, k, model)
        train, test = fold.index("train", "validation"), fold.index("test")
        folds.append((k, train, test, linear_inputs(model, cohort, train, test)))

    def score(labels: np.ndarray, permutation: int) -> dict[str, float]:
        scored = [
            (
                test,
                fit_labels(
                    model, inputs, labels[train], settings, fold_seed(settings, k, permutation)
                ).probability,
            )
            for k, train, test, inputs in folds
        ]
        return pooled_scores(cohort, labels, scored)

    return score


def run_permutations(
    model: str,
    cohort_dir: str | Path,
    split_paths: Sequence[str | Path],
    permutations: Sequence[int],
    settings: TrainSettings,
    out: str | Path,
) -> None:
    """:func:`permutation_scores`, written to ``out`` (TSV)."""
    table = permutation_scores(model, cohort_dir, split_paths, permutations, settings)
    with atomic_path(out) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6f")
