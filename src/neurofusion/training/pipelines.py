"""Every classifier of the study, as "fit on a fold's training subjects, score its test
subjects".

Each model is a function ``fit(fold, log, branches) -> FoldResult``. It reads inputs only
through :class:`Fold`, and every fitted object (input scaling, feature selection, tangent
reference, classifier, early stopping, hyper-parameter search, stacker) records in
:class:`FitLog` the participants it saw, so a test can check them against the split file.

Deep models (torch; in :mod:`~neurofusion.training.deep`, loaded only to fit one) train on
the split's ``train`` subjects and stop early on its ``validation`` subjects. Linear models
fit on the whole training fold (``train`` + ``validation``), choosing C by an inner
stratified cross-validation on it.

In a cohort where some subjects lack a modality, every model sees only the subjects it can
use (:func:`usable`): a single-modality model those with its modality; ``fusion`` and
``late_fusion`` every subject with at least one of theirs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from neurofusion.training.cohort import ARRAY_MODALITIES, Cohort
from neurofusion.training.features import upper_triangle
from neurofusion.training.settings import TrainSettings
from neurofusion.training.splits import role_ids

#: Grey-matter probability above which a voxel enters ``svm_gm`` (training-fold mean).
GM_THRESHOLD = 0.2


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
    fit : callable
        ``fit(fold, log, branches) -> FoldResult``.
    arrays : tuple of str
        Cohort arrays it reads (which decide the modalities it needs).
    deep : bool
        Torch model (saved as ``model.pt``) or scikit-learn (``model.joblib``).
    branches : tuple of str
        Models whose same-fold outputs it can reuse instead of retraining them.
    description : str
    """

    fit: Callable[..., FoldResult]
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


def usable(name: str, cohort: Cohort) -> np.ndarray:
    """(n,) bool: the cohort subjects model ``name`` can fit and score.

    Fusion models (those with branches) take a subject with any of their modalities; the
    others need all of theirs.
    """
    spec = MODELS[name]
    flags = [cohort.has(m) for m in spec.modalities]
    return np.logical_or.reduce(flags) if spec.branches else np.logical_and.reduce(flags)


def usable_ids(name: str, cohort: Cohort, ids: Sequence[str]) -> list[str]:
    """The participants of ``ids`` that model ``name`` can use (:func:`usable`), in order."""
    keep = usable(name, cohort)
    return [pid for pid, ok in zip(ids, keep[cohort.indices(ids)], strict=True) if ok]


# --- linear models -------------------------------------------------------------------------


class _FixedFeatures:
    """Precomputed per-subject features; fitting learns nothing."""

    def __init__(self, matrix: np.ndarray) -> None:
        self.matrix = matrix

    def fit(self, rows: np.ndarray) -> _FixedFeatures:
        return self

    def transform(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.matrix[rows], dtype=np.float64)


class _GreyMatterVoxels:
    """Grey-matter voxels whose training-fold mean probability exceeds :data:`GM_THRESHOLD`."""

    def __init__(self, gm: np.ndarray) -> None:
        self.gm = gm
        self.mask: np.ndarray | None = None

    def fit(self, rows: np.ndarray) -> _GreyMatterVoxels:
        fitted = _GreyMatterVoxels(self.gm)
        fitted.mask = np.asarray(self.gm[rows]).mean(axis=0) > GM_THRESHOLD
        return fitted

    def transform(self, rows: np.ndarray) -> np.ndarray:
        return np.asarray(self.gm[rows])[:, self.mask].astype(np.float64)


class _TangentSpace:
    """nilearn's tangent-space connectivity, its reference fitted on the given subjects.

    nilearn runs hundreds of eigendecompositions of N x N matrices; BLAS is held to one
    thread for them, as multithreading such small matrices only adds synchronisation:
    fitting the reference on 113 subjects' 116-region series took 1.0 s instead of 13.8 s
    (2 cores, torch loaded), and transforming them 0.19 s instead of 2.2 s.
    """

    def __init__(self, series: Sequence[np.ndarray]) -> None:
        self.series = series
        self.measure = None

    def fit(self, rows: np.ndarray) -> _TangentSpace:
        from nilearn.connectome import ConnectivityMeasure

        fitted = _TangentSpace(self.series)
        with threadpool_limits(limits=1):
            fitted.measure = ConnectivityMeasure(
                kind="tangent", vectorize=True, discard_diagonal=True
            ).fit([self.series[i] for i in rows])
        return fitted

    def transform(self, rows: np.ndarray) -> np.ndarray:
        with threadpool_limits(limits=1):
            return self.measure.transform([self.series[i] for i in rows])


def _linear_features(name: str, cohort: Cohort):
    if name == "svm_connectivity":
        return _FixedFeatures(upper_triangle(np.asarray(cohort.array("fc"))))
    if name == "svm_handcrafted":
        return _FixedFeatures(cohort.handcrafted)
    if name == "svm_gm":
        return _GreyMatterVoxels(cohort.array("gm"))
    if name == "logreg_tangent":
        return _TangentSpace(cohort.timeseries)
    raise KeyError(name)


def _classifier(name: str, c: float):
    if name == "logreg_tangent":
        return LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
    return SVC(kernel="linear", C=c, class_weight="balanced")


def _fit_scaled(name: str, c: float, x: np.ndarray, y: np.ndarray):
    """Scaler + classifier fitted on (n, p) features ``x`` with (n,) labels ``y``."""
    scaler = StandardScaler().fit(x)
    return scaler, _classifier(name, c).fit(scaler.transform(x), y)


def _fit_linear(name: str) -> Callable[..., FoldResult]:
    def fit(fold: Fold, log: FitLog, branches: Mapping | None = None) -> FoldResult:
        training = fold.ids("train", "validation")
        rows = fold.cohort.indices(training)
        labels = fold.labels
        maker = _linear_features(name, fold.cohort)
        grid = fold.settings.svm_c
        inner = StratifiedKFold(fold.settings.inner_folds, shuffle=True, random_state=fold.seed)
        scores = []
        for k, (fit_pos, held_pos) in enumerate(inner.split(rows, labels[rows])):
            fit_rows, held_rows = rows[fit_pos], rows[held_pos]
            fit_ids = [training[i] for i in fit_pos]
            features = maker.fit(fit_rows)
            x_fit, x_held = features.transform(fit_rows), features.transform(held_rows)
            for step in ("features", "scaler", "classifier"):
                log.record(f"inner-{k}/{step}", fit_ids)
            for c in grid:
                scaler, clf = _fit_scaled(name, c, x_fit, labels[fit_rows])
                guess = clf.predict(scaler.transform(x_held))
                score = balanced_accuracy_score(labels[held_rows], guess)
                scores.append({"C": c, "inner_fold": k, "balanced_accuracy": score})
        history = pd.DataFrame(scores)
        mean = history.groupby("C")["balanced_accuracy"].mean()
        best = float(mean.index[np.argmax(mean.to_numpy())])  # ties: the smallest C
        history["selected"] = (history["C"] == best).astype(int)
        features = maker.fit(rows)
        scaler, clf = _fit_scaled(name, best, features.transform(rows), labels[rows])
        for step in ("features", "scaler", "classifier", "hyperparameter_search"):
            log.record(step, training)
        test_rows = fold.index("test")
        margin = clf.decision_function(scaler.transform(features.transform(test_rows)))
        artefact = {"features": features, "scaler": scaler, "classifier": clf, "C": best}
        return FoldResult(expit(margin), history, artefact)

    return fit


def _deep(name: str) -> Callable[..., FoldResult]:
    """Model ``name``'s fit from :mod:`neurofusion.training.deep`, imported when called, so
    that only jobs training a deep model load torch (1.5 s of a linear job's 3.5 s)."""

    def fit(fold: Fold, log: FitLog, branches: Mapping | None = None) -> FoldResult:
        from neurofusion.training.deep import FITS

        return FITS[name](fold, log, branches)

    return fit


#: The study's models and baselines, by the name used in config.yaml and output folders.
MODELS: dict[str, ModelSpec] = {
    "cnn3d": ModelSpec(_deep("cnn3d"), ("t1",), True,
                       description="3D CNN on the MNI T1"),
    "brainnetcnn": ModelSpec(_deep("brainnetcnn"), ("fc",), True,
                             description="BrainNetCNN on Fisher-z connectivity"),
    "fusion": ModelSpec(_deep("fusion"), ("t1", "fc"), True, ("cnn3d", "brainnetcnn"),
                        "intermediate fusion of both encoders (the study's)"),
    "late_fusion": ModelSpec(_deep("late_fusion"), ("t1", "fc"), False, ("cnn3d", "brainnetcnn"),
                             "logistic regression on the branches' out-of-fold probabilities"),
    "early_fusion": ModelSpec(_deep("early_fusion"), ("t1", "maps"), True,
                              description="3D CNN on stacked T1, fALFF and ReHo"),
    "svm_connectivity": ModelSpec(_fit_linear("svm_connectivity"), ("fc",), False,
                                  description="linear SVM on the connectivity upper triangle"),
    "logreg_tangent": ModelSpec(_fit_linear("logreg_tangent"), ("timeseries",), False,
                                description="logistic regression on tangent-space connectivity"),
    "svm_gm": ModelSpec(_fit_linear("svm_gm"), ("gm",), False,
                        description="linear SVM on grey-matter voxels"),
    "svm_handcrafted": ModelSpec(_fit_linear("svm_handcrafted"), ("handcrafted",), False,
                                 description="linear SVM on regional GM volume + GLCM texture"),
}  # fmt: skip
