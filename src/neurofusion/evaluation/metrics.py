"""Classification metrics with 95 % intervals, computed from out-of-fold predictions.

Proportions (accuracy, sensitivity, specificity, precision) get Wilson score intervals;
balanced accuracy, F1 and AUC, which are not simple proportions, get stratified
percentile bootstrap intervals (subjects resampled within each class).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import stats

#: Metrics in report order: name -> (column label, interval method).
METRICS: dict[str, tuple[str, str]] = {
    "accuracy": ("Accuracy", "wilson"),
    "balanced_accuracy": ("Balanced accuracy", "bootstrap"),
    "sensitivity": ("Recall (sensitivity)", "wilson"),
    "specificity": ("Specificity", "wilson"),
    "precision": ("Precision", "wilson"),
    "f1": ("F1", "bootstrap"),
    "auc": ("AUC", "bootstrap"),
}


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion.

    ``(p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n)`` with ``p = k/n``.

    Returns
    -------
    (low, high) : tuple of float
        NaN, NaN when ``n`` is 0.
    """
    if n == 0:
        return math.nan, math.nan
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = successes / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return (centre - half) / denominator, (centre + half) / denominator


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > a negative), ties count 1/2.

    Computed as the Mann-Whitney U statistic from average ranks; NaN without both classes.
    """
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = stats.rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def confusion(labels: np.ndarray, predictions: np.ndarray) -> dict[str, int]:
    """``tp``, ``fn``, ``tn``, ``fp`` counts (positive class 1)."""
    labels, predictions = np.asarray(labels).astype(bool), np.asarray(predictions).astype(bool)
    return {
        "tp": int((labels & predictions).sum()),
        "fn": int((labels & ~predictions).sum()),
        "tn": int((~labels & ~predictions).sum()),
        "fp": int((~labels & predictions).sum()),
    }


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def point_metrics(labels: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """Every metric of :data:`METRICS` at the 0.5 threshold (AUC from the probabilities)."""
    c = confusion(labels, np.asarray(probability) >= 0.5)
    sens = _ratio(c["tp"], c["tp"] + c["fn"])
    spec = _ratio(c["tn"], c["tn"] + c["fp"])
    prec = _ratio(c["tp"], c["tp"] + c["fp"])
    return {
        "accuracy": _ratio(c["tp"] + c["tn"], sum(c.values())),
        "balanced_accuracy": (sens + spec) / 2,
        "sensitivity": sens,
        "specificity": spec,
        "precision": prec,
        "f1": _ratio(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"]),
        "auc": auc(labels, probability),
    }


def stratified_bootstrap(
    labels: np.ndarray,
    statistic: Callable[[np.ndarray], float | list[float]],
    n_boot: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``statistic(rows)`` over ``n_boot`` resamples drawn with replacement within each class.

    Returns
    -------
    numpy.ndarray
        (n_boot,) or (n_boot, k) values; NaN values (degenerate resamples) are kept.
    """
    labels = np.asarray(labels)
    classes = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    out = []
    for _ in range(n_boot):
        rows = np.concatenate([rng.choice(idx, size=len(idx), replace=True) for idx in classes])
        out.append(statistic(rows))
    return np.asarray(out, dtype=float)


def metrics_with_intervals(
    labels: np.ndarray, probability: np.ndarray, n_boot: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """Point estimates and 95 % intervals of every metric of :data:`METRICS`.

    Parameters
    ----------
    labels : numpy.ndarray
        (n,) 0/1 true labels.
    probability : numpy.ndarray
        (n,) positive-class probabilities (prediction = probability >= 0.5).
    n_boot : int
        Bootstrap resamples for balanced accuracy, F1 and AUC.
    seed : int

    Returns
    -------
    pandas.DataFrame
        Index: metric; columns ``value``, ``low``, ``high``, ``successes``, ``n``, ``method``
        (successes/n for the Wilson ones).
    """
    labels = np.asarray(labels).astype(int)
    probability = np.asarray(probability, dtype=float)
    point = point_metrics(labels, probability)
    c = confusion(labels, probability >= 0.5)
    counts = {
        "accuracy": (c["tp"] + c["tn"], len(labels)),
        "sensitivity": (c["tp"], c["tp"] + c["fn"]),
        "specificity": (c["tn"], c["tn"] + c["fp"]),
        "precision": (c["tp"], c["tp"] + c["fp"]),
    }
    booted = [name for name, (_, method) in METRICS.items() if method == "bootstrap"]
    values = stratified_bootstrap(
        labels,
        lambda r: [point_metrics(labels[r], probability[r])[m] for m in booted],
        n_boot,
        np.random.default_rng(seed),
    )
    rows = {}
    for name, (_, method) in METRICS.items():
        if method == "wilson":
            k, n = counts[name]
            low, high = wilson_interval(k, n)
        else:
            column = values[:, booted.index(name)]
            low, high = (  # undefined (NaN) in every resample when one class is absent
                np.nanpercentile(column, [2.5, 97.5])
                if np.isfinite(column).any()
                else (math.nan, math.nan)
            )
            k, n = math.nan, len(labels)
        rows[name] = {"value": point[name], "low": low, "high": high, "successes": k, "n": n,
                      "method": method}  # fmt: skip
    return pd.DataFrame.from_dict(rows, orient="index")


def per_fold_summary(predictions: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD over folds of every metric (each fold's test subjects on their own).

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``fold``, ``label``, ``probability`` of every test subject of every fold.

    Returns
    -------
    pandas.DataFrame
        Index: metric; columns ``fold_mean``, ``fold_sd`` (ddof 1), ``folds``.
    """
    per_fold = pd.DataFrame(
        [point_metrics(g["label"], g["probability"]) for _, g in predictions.groupby("fold")]
    )
    return pd.DataFrame(
        {"fold_mean": per_fold.mean(), "fold_sd": per_fold.std(ddof=1), "folds": len(per_fold)}
    )
