"""The types every model's fit shares: the fold it reads, the log of what each fitting
step saw, what it returns, and the description of a model in the registry.

Each model is a function ``fit(fold, log, branches) -> FoldResult``. It reads inputs only
through :class:`Fold`, and every fitted object (input scaling, feature selection, tangent
reference, classifier, hyper-parameter search, stacker) records in :class:`FitLog` the
participants it saw, so a test can check them against the split file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold

from neurofusion.training.cohort import ARRAY_MODALITIES, Cohort
from neurofusion.training.settings import TrainSettings
from neurofusion.training.splits import role_ids


def inner_cv(labels: np.ndarray, folds: int, seed: int) -> StratifiedKFold | None:
    """The stratified inner cross-validation of a training fold.

    Parameters
    ----------
    labels : numpy.ndarray
        (n,) labels of the training fold's subjects.
    folds : int
        ``models.inner_folds``.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    StratifiedKFold or None
        At most as many folds as the smaller group has subjects (a small cohort's fold, or
        a label permutation, can hold two of a group); None when it has fewer than 2.
    """
    _, counts = np.unique(labels, return_counts=True)
    smallest = int(counts.min()) if len(counts) > 1 else 0
    if smallest < 2:
        return None
    return StratifiedKFold(min(folds, smallest), shuffle=True, random_state=seed)


class FitLog:
    """Which participants each fitting step saw: ``{step: [participant_id, ...]}``."""

    def __init__(self) -> None:
        self.steps: dict[str, list[str]] = {}

    def record(self, step: str, ids: Sequence[str]) -> None:
        """Note that ``step`` was fitted on ``ids`` (a step fitted twice keeps both)."""
        self.steps.setdefault(step, [])
        self.steps[step] = sorted(set(self.steps[step]) | {str(i) for i in ids})

    def merge(self, prefix: str, steps: Mapping[str, Sequence[str]]) -> None:
        """Add another run's steps under ``prefix/``."""
        for step, ids in steps.items():
            self.record(f"{prefix}/{step}", ids)


@dataclasses.dataclass
class Fold:
    """One split of the cohort, with the labels in force (permuted in permutation tests).

    Attributes
    ----------
    cohort : Cohort
    split : pandas.DataFrame
        ``participant_id``, ``role`` (train, validation, test).
    labels : numpy.ndarray
        (n,) int labels in cohort order.
    settings : TrainSettings
    seed : int
        Seed of this fold's training (derived from the settings' seed, split and
        permutation).
    """

    cohort: Cohort
    split: pd.DataFrame
    labels: np.ndarray
    settings: TrainSettings
    seed: int

    def ids(self, *roles: str) -> list[str]:
        """participant_ids of the roles."""
        return role_ids(self.split, *roles)

    def index(self, *roles: str) -> np.ndarray:
        """Cohort rows of the roles."""
        return self.cohort.indices(self.ids(*roles))

    @property
    def validation_fraction(self) -> float:
        """Share of the training fold the split sets aside for validation."""
        return len(self.ids("validation")) / max(1, len(self.ids("train", "validation")))


@dataclasses.dataclass
class FoldResult:
    """What one model made of one fold.

    Attributes
    ----------
    probability : numpy.ndarray
        (n_test,) positive-class probability of each test subject, split-file order.
    history : pandas.DataFrame
        Deep models: the training curve; linear models: the inner-CV scores of each C.
    artefact : Any
        What is saved: a dict with a ``state_dict`` (torch) or a fitted estimator.
    """

    probability: np.ndarray
    history: pd.DataFrame
    artefact: Any


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A model of the study.

    Attributes
    ----------
    module : str
        The module of ``neurofusion.training`` whose ``FITS[name]`` fits it: ``deep``
        (torch; imported only when such a model is fitted) or ``linear``.
    arrays : tuple of str
        Cohort arrays it reads (which decide the modalities it needs).
    deep : bool
        Torch model (saved as ``model.pt``) or scikit-learn (``model.joblib``).
    branches : tuple of str
        Models whose same-fold outputs it can reuse instead of retraining them.
    description : str
    """

    module: str
    arrays: tuple[str, ...]
    deep: bool
    branches: tuple[str, ...] = ()
    description: str = ""

    def networks(self, name: str) -> tuple[str, ...]:
        """The deep networks that training model ``name`` (this spec's) may fit: itself
        when it is a torch model, and its branches (sorted), which ``fusion`` trains only
        when their own jobs' outputs are not given and ``fusion_init`` is ``branches``."""
        return tuple(sorted(({name} if self.deep else set()) | set(self.branches)))

    @property
    def modalities(self) -> list[str]:
        """The modalities its arrays come from (``T1w``, ``bold``)."""
        return sorted({m for array in self.arrays for m in ARRAY_MODALITIES[array]})
