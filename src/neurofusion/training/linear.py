"""The linear models and baselines: fit on the whole training fold (``train`` +
``validation``), choosing C by an inner stratified cross-validation on it.

The steps that see no labels (feature selection, the tangent-space reference, the
standardisation) are fitted once on the whole training fold and serve the inner CV too;
only the classifiers are refitted on each inner split (:func:`fit_labels`). So a label
permutation reuses everything else (:class:`LinearInputs`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from scipy.special import expit
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from neurofusion.training.cohort import Cohort
from neurofusion.training.features import upper_triangle
from neurofusion.training.fold import FitLog, Fold, FoldResult, inner_cv
from neurofusion.training.settings import TrainSettings

#: Grey-matter probability above which a voxel enters ``svm_gm`` (training-fold mean).
GM_THRESHOLD = 0.2


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


class BalancedLogistic:
    """L2-penalised logistic regression with balanced class weights, by Newton's method.

    The model of scikit-learn's ``LogisticRegression(C=c, class_weight="balanced")``:
    it minimises ``C * sum_i s_i * logloss(y_i, x_i . w + b) + |w|^2 / 2`` (``s_i`` =
    n / (2 n_class), the intercept not penalised), and its coefficients agree with
    scikit-learn's to 1e-6 (a test). Written here because in the basis of
    :class:`LinearInputs` (at most ~113 coordinates) scikit-learn spends most of each fit
    checking its inputs: a permutation test fits 130 of these per permutation, at about
    4 ms each with ``solver="newton-cholesky"`` and 0.5-1 ms here (75 subjects, 112
    coordinates).
    """

    def __init__(self, c: float, tolerance: float = 1e-10, max_iter: int = 100) -> None:
        self.c, self.tolerance, self.max_iter = c, tolerance, max_iter

    def fit(self, x: np.ndarray, y: np.ndarray) -> BalancedLogistic:
        """Fit on (n, p) ``x`` and (n,) 0/1 labels ``y``."""
        design = np.hstack([x, np.ones((len(x), 1))])
        counts = np.bincount(y, minlength=2).astype(float)
        weight = self.c * len(y) / (2 * counts[y])
        penalty = np.ones(design.shape[1])
        penalty[-1] = 0.0
        sign = 2.0 * y - 1.0

        def objective(theta: np.ndarray) -> float:
            margin = sign * (design @ theta)
            return float(weight @ np.logaddexp(0.0, -margin) + 0.5 * penalty @ theta**2)

        theta = np.zeros(design.shape[1])
        for _ in range(self.max_iter):
            p = expit(design @ theta)
            gradient = design.T @ (weight * (p - y)) + penalty * theta
            if np.abs(gradient).max() < self.tolerance:
                break
            hessian = (design.T * (weight * p * (1 - p))) @ design + np.diag(penalty)
            step = np.linalg.solve(hessian, gradient)
            # Newton's step, halved until the objective falls (near-separable data).
            current, scale = objective(theta), 1.0
            while objective(theta - scale * step) > current and scale > 1e-8:
                scale /= 2
            theta -= scale * step
        self.coef_, self.intercept_ = theta[None, :-1], theta[-1:]
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """(n,) margins ``x . w + b``."""
        return x @ self.coef_[0] + self.intercept_[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(n,) 0/1 predictions."""
        return (self.decision_function(x) > 0).astype(int)


def _classifier(name: str, c: float):
    """The classifier of ``name`` at ``C = c``."""
    if name == "logreg_tangent":
        return BalancedLogistic(c)
    return SVC(kernel="linear", C=c, class_weight="balanced")


def balanced_accuracy(truth: np.ndarray, guess: np.ndarray) -> float:
    """Mean recall over the classes of ``truth``: scikit-learn's
    ``balanced_accuracy_score`` when ``guess`` holds no other class, without its input
    checks (a millisecond each, 130 calls per permutation of a 10-fold CV)."""
    return float(np.mean([np.mean(guess[truth == c] == c) for c in np.unique(truth)]))


@dataclasses.dataclass(frozen=True)
class LinearInputs:
    """The part of a linear model's fold that does not depend on the labels.

    The features (grey-matter voxels, tangent-space connectivity, ...) are fitted on the
    training fold, standardised with its mean and SD, and written in the orthonormal basis
    of the span of the training subjects' standardised features (thin SVD, rank <= n).
    Every classifier fitted on training subjects has its weights in that span (an SVM's
    are a sum of support vectors, an L2-penalised logistic regression's a sum of
    gradients), so its margins are the same in the basis as in the full feature space,
    for a few hundred coordinates instead of tens of thousands. Permutation tests reuse
    this object for every permutation of the labels.

    Attributes
    ----------
    train : numpy.ndarray
        (n_train, r) training subjects in the basis.
    test : numpy.ndarray
        (n_test, r) test subjects in the basis.
    features : object
        The fitted feature maker (grey-matter mask, tangent reference, ...).
    scaler : StandardScaler
        Fitted on the training subjects' features.
    basis : numpy.ndarray
        (p, r) orthonormal columns: the span of the training subjects' features.
    """

    train: np.ndarray
    test: np.ndarray
    features: Any
    scaler: StandardScaler
    basis: np.ndarray


def linear_inputs(
    name: str, cohort: Cohort, train_rows: np.ndarray, test_rows: np.ndarray
) -> LinearInputs:
    """:class:`LinearInputs` of model ``name`` for one fold (cohort row indices)."""
    features = _linear_features(name, cohort).fit(train_rows)
    x_train = features.transform(train_rows)
    scaler = StandardScaler().fit(x_train)
    standard = scaler.transform(x_train)
    _, singular, vt = np.linalg.svd(standard, full_matrices=False)
    basis = vt[singular > singular[0] * 1e-10].T
    test = scaler.transform(features.transform(test_rows)) @ basis
    return LinearInputs(standard @ basis, test, features, scaler, basis)


@dataclasses.dataclass(frozen=True)
class LinearFit:
    """What :func:`fit_labels` made of one fold's labels.

    Attributes
    ----------
    probability : numpy.ndarray
        (n_test,) logistic of the classifier's margin.
    scores : numpy.ndarray
        (n_inner_folds, n_grid) balanced accuracy of each C on each inner held-out set.
    grid : tuple of float
        The C values searched.
    c : float
        The C chosen: the best mean inner score (ties: the smallest C).
    classifier : object
        Fitted on every training subject with ``c``.
    inner_fits : list of numpy.ndarray
        Positions (in the training rows) of each inner fit set.
    """

    probability: np.ndarray
    scores: np.ndarray
    grid: tuple[float, ...]
    c: float
    classifier: Any
    inner_fits: list[np.ndarray]

    @property
    def history(self) -> pd.DataFrame:
        """``C``, ``inner_fold``, ``balanced_accuracy``, ``selected``: the inner CV (one
        row with ``inner_fold`` -1 when there was none)."""
        if not len(self.scores):
            return pd.DataFrame(
                {"C": [self.c], "inner_fold": [-1], "balanced_accuracy": [np.nan], "selected": 1}
            )
        folds, cs = np.meshgrid(np.arange(len(self.scores)), self.grid, indexing="ij")
        return pd.DataFrame(
            {
                "C": cs.ravel(),
                "inner_fold": folds.ravel(),
                "balanced_accuracy": self.scores.ravel(),
                "selected": (cs.ravel() == self.c).astype(int),
            }
        )


def fit_labels(
    name: str, inputs: LinearInputs, labels: np.ndarray, settings: TrainSettings, seed: int
) -> LinearFit:
    """Choose C by inner CV on the training subjects, fit, and score the test subjects.

    Parameters
    ----------
    name : str
        The linear model.
    inputs : LinearInputs
        The fold's label-free part.
    labels : numpy.ndarray
        (n_train,) labels of the training subjects.
    settings : TrainSettings
        ``svm_c`` (the grid) and ``inner_folds``.
    seed : int
        Seed of the inner CV's shuffle.
    """
    grid = tuple(settings.svm_c)
    inner = inner_cv(labels, settings.inner_folds, seed)
    scores, fits = [], []
    splits = inner.split(inputs.train, labels) if inner else []
    # scikit-learn's input checks cost more than the fits themselves on these small
    # arrays (3.4 of 5.3 s over 2,600 SVM fits); the inputs are finite by construction.
    with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
        for fit_pos, held_pos in splits:
            fits.append(fit_pos)
            held = inputs.train[held_pos]
            scores.append(
                [
                    balanced_accuracy(
                        labels[held_pos],
                        _classifier(name, c)
                        .fit(inputs.train[fit_pos], labels[fit_pos])
                        .predict(held),
                    )
                    for c in grid
                ]
            )
    scores = np.asarray(scores, dtype=float).reshape(-1, len(grid))
    if len(scores):
        order = np.argsort(grid, kind="stable")  # ties: the smallest C
        best = grid[order[np.argmax(scores.mean(axis=0)[order])]]
    else:  # a group with one training subject: no inner CV, the middle C
        best = grid[len(grid) // 2]
    clf = _classifier(name, best).fit(inputs.train, labels)
    probability = expit(clf.decision_function(inputs.test))
    return LinearFit(probability, scores, grid, float(best), clf, fits)


def _fit_linear(name: str) -> Callable[..., FoldResult]:
    def fit(fold: Fold, log: FitLog, branches: Mapping | None = None) -> FoldResult:
        training = fold.ids("train", "validation")
        rows = fold.cohort.indices(training)
        inputs = linear_inputs(name, fold.cohort, rows, fold.index("test"))
        result = fit_labels(name, inputs, fold.labels[rows], fold.settings, fold.seed)
        for step in ("features", "scaler", "basis"):
            log.record(step, training)
        for k, fit_pos in enumerate(result.inner_fits):
            log.record(f"inner-{k}/classifier", [training[i] for i in fit_pos])
        for step in ("classifier", "hyperparameter_search"):
            log.record(step, training)
        artefact = {
            "features": inputs.features,
            "scaler": inputs.scaler,
            "basis": inputs.basis,
            "classifier": result.classifier,
            "C": result.c,
        }
        return FoldResult(result.probability, result.history, artefact)

    return fit


#: Each linear model's ``fit(fold, log, branches) -> FoldResult``, by name.
FITS: dict[str, Callable[..., FoldResult]] = {
    name: _fit_linear(name)
    for name in ("svm_connectivity", "logreg_tangent", "svm_gm", "svm_handcrafted")
}
