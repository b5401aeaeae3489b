"""The linear models and baselines: fit on the whole training fold (``train`` +
``validation``), choosing C by an inner stratified cross-validation on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from threadpoolctl import threadpool_limits

from neurofusion.training.cohort import Cohort
from neurofusion.training.features import upper_triangle
from neurofusion.training.fold import FitLog, Fold, FoldResult, inner_cv

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
        inner = inner_cv(labels[rows], fold.settings.inner_folds, fold.seed)
        scores = []
        splits = inner.split(rows, labels[rows]) if inner else []
        for k, (fit_pos, held_pos) in enumerate(splits):
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
        if not scores:  # a group with one training subject: no inner CV, the middle C
            scores = [{"C": grid[len(grid) // 2], "inner_fold": -1, "balanced_accuracy": np.nan}]
        history = pd.DataFrame(scores)
        mean = history.groupby("C")["balanced_accuracy"].mean().fillna(0.0)
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


#: Each linear model's ``fit(fold, log, branches) -> FoldResult``, by name.
FITS: dict[str, Callable[..., FoldResult]] = {
    name: _fit_linear(name)
    for name in ("svm_connectivity", "logreg_tangent", "svm_gm", "svm_handcrafted")
}
