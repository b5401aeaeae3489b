"""The jobs of the models stage: cohort splits and one (model, fold) training, and the
out-of-fold scores of a model's whole pipeline (:mod:`~neurofusion.training.layout` says
where the files go)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from neurofusion.errors import NeurofusionError
from neurofusion.fileio import atomic_path, write_json
from neurofusion.preprocessing.threads import limit_threads
from neurofusion.provenance import provenance_record
from neurofusion.training.cohort import Cohort, cohort_outputs
from neurofusion.training.fold import FitLog, Fold
from neurofusion.training.history import training_summary
from neurofusion.training.layout import fold_files, fold_key
from neurofusion.training.registry import MODELS, fit_model, usable
from neurofusion.training.settings import TrainSettings
from neurofusion.training.splits import (
    final_split,
    make_splits,
    read_split,
    split_seed,
    write_splits,
)

log = logging.getLogger(__name__)


def create_splits(
    cohort_dir: str | Path,
    paths: Sequence[str | Path],
    folds: int,
    repeats: int,
    seed: int,
    validation_fraction: float,
) -> None:
    """Write the ``folds * repeats`` split files of the cohort (``paths`` in split order).

    The workflow fixes ``folds`` (the number of split files) when it plans the run, from
    participants.tsv; QC exclusions can leave the smaller group with fewer subjects than
    that, which stops here with an error naming the exclusions and the fix.
    """
    cohort = Cohort(cohort_dir)
    sizes = cohort.table["group"].value_counts()
    if int(sizes.min()) < folds:
        raise NeurofusionError(
            f"the run was planned with {folds} folds (models.folds, at most the smaller "
            "group's size in participants.tsv), but after the QC exclusions listed in "
            f"{cohort_outputs(cohort_dir, ())['excluded']} group {sizes.idxmin()!r} has "
            f"{int(sizes.min())} subjects, so some test folds would miss it. Fix: set "
            f"models.folds to {int(sizes.min())} or fewer (or review the exclusions and the "
            "qc: thresholds) and run again"
        )
    write_splits(make_splits(cohort.table, folds, repeats, seed, validation_fraction), paths)


def create_final_split(
    cohort_dir: str | Path, path: str | Path, seed: int, validation_fraction: float
) -> None:
    """Write the final models' split (:func:`~neurofusion.training.splits.final_split`)."""
    write_splits([final_split(Cohort(cohort_dir).table, seed, validation_fraction)], [path])


def load_fold(
    cohort: Cohort, split_path: str | Path, settings: TrainSettings, k: int, model: str
) -> Fold:
    """Split ``k`` restricted to the subjects ``model`` can use (:func:`usable`)."""
    split = read_split(split_path)
    if set(split["participant_id"]) != set(cohort.ids):
        raise NeurofusionError(
            f"{split_path} lists other participants than the cohort table; the splits are "
            "stale: delete the models/splits folder and run again"
        )
    split = cohort.keep(split, usable(model, cohort))
    return Fold(cohort, split, cohort.labels, settings, fold_seed(settings, k))


def read_branches(model: str, branch_dirs: Mapping[str, str | Path]) -> dict[str, dict]:
    """Outputs of the same fold's branch models that ``model`` reuses.

    ``fusion`` takes their weights (``state_dict``), ``late_fusion`` their test
    probabilities (``probability``: participant_id -> p); both take ``fitted``.
    """
    out = {}
    for name, folder in branch_dirs.items():
        files = fold_files(folder, name)
        fitted = json.loads(files["provenance"].read_text())["fitted"]
        entry: dict = {"fitted": fitted}
        if model == "fusion":
            import torch  # here, not at the top: the linear models' jobs never load it

            entry["state_dict"] = torch.load(files["model"], weights_only=True)["state_dict"]
        else:
            predictions = pd.read_csv(files["predictions"], sep="\t")
            entry["probability"] = dict(
                zip(predictions["subject"], predictions["probability"], strict=True)
            )
        out[name] = entry
    return out


def run_fold(
    model: str,
    cohort_dir: str | Path,
    split_path: str | Path,
    fold: int | str,
    out: Mapping[str, str | Path],
    settings: TrainSettings,
    branch_dirs: Mapping[str, str | Path] | None = None,
) -> pd.DataFrame:
    """Train ``model`` on split ``fold`` and write its outputs (:func:`fold_outputs`).

    Parameters
    ----------
    model : str
        A key of :data:`~neurofusion.training.registry.MODELS`.
    cohort_dir : path
    split_path : path
        The split's TSV.
    fold : int or str
        Split index k (seeds the fold), or :data:`FINAL`.
    out : mapping
        ``predictions``, ``history``, ``model``, ``provenance`` paths.
    settings : TrainSettings
    branch_dirs : mapping, optional
        ``{branch model: its fold-<k> folder}`` to reuse (``fusion``, ``late_fusion``).

    Returns
    -------
    pandas.DataFrame
        The predictions.
    """
    limit_threads(settings.threads)
    spec = MODELS[model]
    cohort = Cohort(cohort_dir)
    data = load_fold(cohort, split_path, settings, fold_key(fold), model)
    branches = read_branches(model, branch_dirs) if branch_dirs else None
    fit_log = FitLog()
    sizes = [len(data.ids(role)) for role in ("train", "validation", "test")]
    log.info("%s fold %s: %d train, %d validation, %d test", model, fold, *sizes)
    result = fit_model(model, data, fit_log, branches)
    test = data.ids("test")
    rows = cohort.indices(test)
    predictions = pd.DataFrame(
        {
            "subject": test,
            "fold": fold,
            "label": cohort.labels[rows],
            "probability": np.round(result.probability, 6),
            "prediction": (result.probability >= 0.5).astype(int),
            "modalities": cohort.subject_modalities[rows],
            "complete": cohort.complete[rows].astype(int),
        }
    )
    if len(predictions):
        accuracy = float((predictions["label"] == predictions["prediction"]).mean())
        log.info("%s fold %s: test accuracy %.3f", model, fold, accuracy)
    with atomic_path(out["predictions"]) as tmp:
        predictions.to_csv(tmp, sep="\t", index=False)
    with atomic_path(out["history"]) as tmp:
        result.history.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    with atomic_path(out["model"]) as tmp:
        if spec.deep:
            import torch  # loaded by the deep model's fit already

            torch.save(result.artefact, tmp)
        else:
            joblib.dump(result.artefact, tmp)
    arrays = cohort_outputs(cohort_dir, ("T1w", "bold"))
    inputs = [arrays["table"], *(arrays[a] for a in spec.arrays), split_path]
    inputs += [p for name, d in (branch_dirs or {}).items() for p in fold_files(d, name).values()]
    extra = {"fold": fold}
    if spec.deep:
        extra["training"] = training_summary(result.history, settings.for_model(model))
    record = provenance_record(
        step=f"train {model}",
        inputs=inputs,
        parameters={
            "model": model,
            "description": spec.description,
            # The learning rate of each network it may train (none for a linear model).
            **{k: v for k, v in settings.as_dict().items() if k not in ("lr", "model_lr")},
            "model_lr": settings.learning_rates(spec.networks(model)),
        },
        seed=data.seed,
        extra={
            **extra,
            "split": {role: data.ids(role) for role in ("train", "validation", "test")},
            "fitted": fit_log.steps,
        },
    )
    write_json(out["provenance"], record)
    return predictions


def cross_validated_scores(
    model: str,
    cohort: Cohort,
    split_paths: Sequence[str | Path],
    settings: TrainSettings,
    labels: np.ndarray | None = None,
    permutation: int = 0,
) -> dict[str, float]:
    """Out-of-fold performance of ``model``'s whole pipeline over ``split_paths``.

    Every split's model is fitted as its job would fit it (same seed when ``permutation``
    is 0, so the probabilities are the job's), and scored on the subjects with every
    modality (those the evaluation's main table scores).

    Parameters
    ----------
    model : str
    cohort : Cohort
    split_paths : sequence of path
        One repeat of the K folds.
    settings : TrainSettings
    labels : numpy.ndarray, optional
        (n,) labels in cohort order to fit and score against (default: the cohort's).
    permutation : int
        Index of a label permutation; above 0 it also reseeds every fold's training.

    Returns
    -------
    dict
        ``balanced_accuracy``, ``accuracy`` (0-1) and ``auc``.
    """
    labels = cohort.labels if labels is None else labels
    scored = []
    for k, path in enumerate(split_paths):
        fold = load_fold(cohort, path, settings, k, model)
        fold.labels = labels
        fold.seed = fold_seed(settings, k, permutation)
        scored.append((fold.index("test"), fit_model(model, fold, FitLog(), None).probability))
    return pooled_scores(cohort, labels, scored)


def fold_seed(settings: TrainSettings, k: int, permutation: int = 0) -> int:
    """Seed of split ``k``'s training; a label permutation (>= 1) reseeds it."""
    if permutation:
        return split_seed(settings.seed, k, permutation)
    return split_seed(settings.seed, k)


def pooled_scores(
    cohort: Cohort, labels: np.ndarray, scored: Sequence[tuple[np.ndarray, np.ndarray]]
) -> dict[str, float]:
    """Balanced accuracy, accuracy and AUC of out-of-fold probabilities pooled over folds.

    Parameters
    ----------
    cohort : Cohort
    labels : numpy.ndarray
        (n,) labels in cohort order (permuted in permutation tests).
    scored : sequence of (numpy.ndarray, numpy.ndarray)
        Per fold, the test subjects' cohort rows and their probabilities; only subjects
        with every modality count (those the evaluation's main table scores).
    """
    complete = cohort.complete
    truth = np.concatenate([labels[test][complete[test]] for test, _ in scored])
    prob = np.concatenate([p[complete[test]] for test, p in scored])
    guess = (prob >= 0.5).astype(int)
    return {
        "balanced_accuracy": balanced_accuracy_score(truth, guess),
        "accuracy": float((truth == guess).mean()),
        "auc": roc_auc_score(truth, prob),
    }
