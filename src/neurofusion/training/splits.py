"""Subject-level stratified cross-validation splits, written before any model sees data.

Each split is one TSV in the style of ClinicaDL's split files: ``participant_id``,
``group`` and ``role`` (``train``, ``validation`` or ``test``). Split ``k`` belongs to
repeat ``k // folds``; within a repeat the test folds partition the cohort. The
``validation`` subjects are a stratified share of the training fold, used for early
stopping of the deep models with ``models.stopping: validation`` (with ``fixed`` they
train with the rest); every fitted object sees training-fold subjects only
(``train`` and ``validation``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from neurofusion.errors import NeurofusionError
from neurofusion.fileio import atomic_path

#: Roles of a split file.
ROLES = ("train", "validation", "test")


def split_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed derived from ``seed`` and integer keys (fold, permutation, ...)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


def validation_rows(rows: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A stratified ``validation`` share of ``rows``: ``ceil(fraction * n)`` subjects, and
    at least one per group, so that small cohorts (a training fold of 4) still split.

    Parameters
    ----------
    rows : numpy.ndarray
        (n,) indices of the training subjects.
    groups : numpy.ndarray
        (n_subjects,) group of every subject of the cohort.
    fraction : float
        Share set aside.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    numpy.ndarray
        The indices (a subset of ``rows``) set aside.

    Raises
    ------
    NeurofusionError
        When a group has fewer than 2 subjects in ``rows`` (none would be left to train).
    """
    counts = pd.Series(groups[rows]).value_counts()
    if counts.min() < 2:
        raise NeurofusionError(
            f"a training fold holds only {counts.min()} subject(s) of group "
            f"{counts.idxmin()!r}, too few to set one aside for validation; lower "
            "models.folds or add subjects"
        )
    size = max(int(np.ceil(fraction * len(rows))), len(counts))
    _, validation = train_test_split(rows, test_size=size, stratify=groups[rows], random_state=seed)
    return validation


def make_splits(
    cohort: pd.DataFrame,
    folds: int = 10,
    repeats: int = 1,
    seed: int = 0,
    validation_fraction: float = 0.2,
) -> list[pd.DataFrame]:
    """Stratified K-fold splits of a cohort, each with an inner validation share.

    Parameters
    ----------
    cohort : pandas.DataFrame
        ``participant_id`` and ``group`` (and ``label``); one row per subject.
    folds : int
        K, test folds per repeat (each subject is tested once per repeat).
    repeats : int
        Repetitions with different shuffles.
    seed : int
        Seed of every shuffle.
    validation_fraction : float
        Share of each training fold set aside, stratified, as ``validation``.

    Returns
    -------
    list of pandas.DataFrame
        ``folds * repeats`` tables (``participant_id``, ``group``, ``role``), cohort order.

    Raises
    ------
    NeurofusionError
        When the smaller group has fewer subjects than ``folds``.
    """
    groups = cohort["group"].to_numpy()
    smallest = int(pd.Series(groups).value_counts().min())
    if smallest < folds:
        raise NeurofusionError(
            f"models.folds is {folds} but the smaller group has only {smallest} subjects; "
            "lower models.folds so that every test fold holds both groups"
        )
    splits = []
    for repeat in range(repeats):
        outer = StratifiedKFold(folds, shuffle=True, random_state=split_seed(seed, repeat))
        for fold, (train, test) in enumerate(outer.split(np.zeros(len(groups)), groups)):
            validation = validation_rows(
                train, groups, validation_fraction, split_seed(seed, repeat, fold)
            )
            role = np.full(len(groups), "train", dtype=object)
            role[validation] = "validation"
            role[test] = "test"
            table = cohort[["participant_id", "group"]].copy()
            table["role"] = role
            splits.append(table.reset_index(drop=True))
    return splits


def final_split(
    cohort: pd.DataFrame, seed: int = 0, validation_fraction: float = 0.2
) -> pd.DataFrame:
    """The split of the final models: every subject trains (``train``), except a
    stratified ``validation`` share for early stopping; no ``test`` role.

    The final models embed new subjects for retrieval; the cross-validation splits, not
    this one, measure how well models generalise.
    """
    groups = cohort["group"].to_numpy()
    rows = np.arange(len(groups))
    validation = validation_rows(rows, groups, validation_fraction, split_seed(seed))
    table = cohort[["participant_id", "group"]].copy().reset_index(drop=True)
    table["role"] = "train"
    table.loc[validation, "role"] = "validation"
    return table


def write_splits(splits: Sequence[pd.DataFrame], paths: Sequence[str | Path]) -> None:
    """Write each split to its TSV, atomically."""
    if len(splits) != len(paths):
        raise ValueError(f"{len(splits)} splits but {len(paths)} paths")
    for table, path in zip(splits, paths, strict=True):
        with atomic_path(path) as tmp:
            table.to_csv(tmp, sep="\t", index=False)


def read_split(path: str | Path) -> pd.DataFrame:
    """Read a split TSV and check its roles (the final split has no ``test``)."""
    table = pd.read_csv(path, sep="\t", dtype=str)
    unknown = set(table["role"]) - set(ROLES)
    if unknown or "train" not in set(table["role"]):
        raise NeurofusionError(
            f"{path}: roles must be {list(ROLES)} with train present; found "
            f"{sorted(set(table['role']))}. Delete the splits folder to make it again"
        )
    return table


def role_ids(split: pd.DataFrame, *roles: str) -> list[str]:
    """participant_ids of the given roles, in file order."""
    return split.loc[split["role"].isin(roles), "participant_id"].tolist()
