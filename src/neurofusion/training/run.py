"""The jobs of the models stage: cohort splits, one (model, fold), permutations.

Outputs of a (model, fold) job, in ``<output_dir>/models/<model>/fold-<k>/``:
``predictions.tsv`` (``subject``, ``fold``, ``label``, ``probability``, ``prediction``,
``modalities`` the subject has, ``complete`` 1 when that is every modality of the cohort),
``history.tsv``, ``model.pt`` (torch) or ``model.joblib`` (scikit-learn) and
``provenance.json``, whose ``fitted`` field maps each fitting step to the participants
it saw and whose ``split`` field lists the split's participants by role.

The final models (fold :data:`FINAL`, in ``<output_dir>/models/<model>/final/``) are
trained the same way on every subject (:func:`~neurofusion.training.splits.final_split`);
they embed new subjects for retrieval and are not evaluated.
"""

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
from neurofusion.training.pipelines import MODELS, FitLog, Fold, usable
from neurofusion.training.settings import TrainSettings
from neurofusion.training.splits import (
    final_split,
    make_splits,
    read_split,
    split_seed,
    write_splits,
)

log = logging.getLogger(__name__)

#: The fold name of the final models, trained on every subject.
FINAL = "final"
#: Seed key of the final models' training (the cross-validation folds use 0 .. K - 1).
FINAL_SEED_KEY = 2**31 - 1


def fold_key(fold: int | str) -> int:
    """Integer seed key of a fold: k for split k, :data:`FINAL_SEED_KEY` for the final."""
    return FINAL_SEED_KEY if fold == FINAL else int(fold)


def fold_name(fold: int | str) -> str:
    """Name of a fold's folder and split file: ``fold-<k>``, or ``final``."""
    return FINAL if fold == FINAL else f"fold-{fold}"


def fold_outputs(
    models_root: str | Path, model: str, fold: int | str, deep: bool | None = None
) -> dict[str, Path]:
    """Files of one (model, fold) job; ``deep`` overrides the model's own (for wildcards).
    ``fold`` :data:`FINAL`: the final model's, in ``<model>/final``."""
    return fold_files(Path(models_root) / model / fold_name(fold), model, deep)


def fold_files(folder: str | Path, model: str, deep: bool | None = None) -> dict[str, Path]:
    """Files of a (model, fold) job in its ``fold-<k>`` folder."""
    folder = Path(folder)
    deep = MODELS[model].deep if deep is None else deep
    weights = "model.pt" if deep else "model.joblib"
    return {
        "predictions": folder / "predictions.tsv",
        "history": folder / "history.tsv",
        "model": folder / weights,
        "provenance": folder / "provenance.json",
    }


def split_paths(splits_dir: str | Path, n_splits: int) -> list[Path]:
    """``fold-<k>.tsv`` of every split, k = 0 .. n_splits - 1."""
    return [split_file(splits_dir, k) for k in range(n_splits)]


def split_file(splits_dir: str | Path, fold: int | str) -> Path:
    """The split TSV of a fold: ``fold-<k>.tsv``, or ``final.tsv`` for :data:`FINAL`."""
    return Path(splits_dir) / f"{fold_name(fold)}.tsv"


def job_inputs(
    cohort_dir: str | Path,
    splits_dir: str | Path,
    models_root: str | Path,
    model: str,
    fold: int | str | None,
    fusion_init: str,
) -> dict[str, Path]:
    """Files a (model, fold) job reads; ``fold`` None: a permutation job (no branches).

    Keys: ``table`` and the model's cohort arrays; ``split`` (with a fold); for ``fusion``
    starting from its branches and for ``late_fusion``, ``<branch>_<file>`` of the same
    fold's branch jobs.
    """
    spec = MODELS[model]
    cohort = cohort_outputs(cohort_dir, ("T1w", "bold"))
    files = {"table": cohort["table"], **{a: cohort[a] for a in spec.arrays}}
    if fold is None:
        return files
    files["split"] = split_file(splits_dir, fold)
    if model == "late_fusion" or (model == "fusion" and fusion_init == "branches"):
        for name in spec.branches:
            for key, path in fold_outputs(models_root, name, fold).items():
                files[f"{name}_{key}"] = path
    return files


def available_models(
    enabled: Sequence[str], modalities: Sequence[str], why: str = "absent from input.modalities"
) -> dict[str, str]:
    """Enabled models whose inputs exist for ``modalities``; others map to why not.

    ``why`` completes the reason ("needs T1w, <why>").

    Returns
    -------
    dict
        ``{model: ""}`` for the runnable ones, ``{model: reason}`` for the skipped ones.
    """
    out = {}
    for name in enabled:
        missing = sorted(set(MODELS[name].modalities) - set(modalities))
        out[name] = (
            f"needs {' and '.join(missing)}, absent from input.modalities" if missing else ""
        )
    return out


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


def _load_fold(
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
    return Fold(cohort, split, cohort.labels, settings, split_seed(settings.seed, k))


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
        A key of :data:`~neurofusion.training.pipelines.MODELS`.
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
    data = _load_fold(cohort, split_path, settings, fold_key(fold), model)
    branches = read_branches(model, branch_dirs) if branch_dirs else None
    fit_log = FitLog()
    sizes = [len(data.ids(role)) for role in ("train", "validation", "test")]
    log.info("%s fold %s: %d train, %d validation, %d test", model, fold, *sizes)
    result = spec.fit(data, fit_log, branches)
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
            "fold": fold,
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
    spec = MODELS[model]
    labels = cohort.labels if labels is None else labels
    complete = cohort.complete
    truth, prob = [], []
    for k, path in enumerate(split_paths):
        fold = _load_fold(cohort, path, settings, k, model)
        fold.labels = labels
        if permutation:
            fold.seed = split_seed(settings.seed, k, permutation)
        result = spec.fit(fold, FitLog(), None)
        test = fold.index("test")
        truth.append(labels[test][complete[test]])
        prob.append(result.probability[complete[test]])
    truth, prob = np.concatenate(truth), np.concatenate(prob)
    guess = (prob >= 0.5).astype(int)
    return {
        "balanced_accuracy": balanced_accuracy_score(truth, guess),
        "accuracy": float((truth == guess).mean()),
        "auc": roc_auc_score(truth, prob),
    }


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


def permutation_file(models_dir: str | Path, model: str, first: int, last: int) -> Path:
    """``<models_dir>/<model>/permutations/<first>-<last>.tsv``."""
    return Path(models_dir) / model / "permutations" / f"{first}-{last}.tsv"


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
    scored against the shuffled labels.

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
    rows = []
    for p in permutations:
        labels = permuted_labels(cohort.labels, settings.seed, p)
        scores = cross_validated_scores(model, cohort, split_paths, settings, labels, p)
        rows.append({"permutation": p, **scores})
        log.info("%s permutation %d (%d of %d): %s", model, p, len(rows), len(permutations),
                 rows[-1])  # fmt: skip
    return pd.DataFrame(rows, columns=["permutation", "balanced_accuracy", "accuracy", "auc"])


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
