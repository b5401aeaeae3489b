"""Tests of the cross-validated results: exact McNemar, paired bootstrap of an AUC
difference, and the p-value of a label-permutation test."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from neurofusion.evaluation.metrics import auc, stratified_bootstrap


def mcnemar_exact(labels: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict:
    """Exact (binomial) McNemar test of two classifiers' paired predictions.

    Parameters
    ----------
    labels, pred_a, pred_b : numpy.ndarray
        (n,) 0/1 truth and the two models' predictions of the same subjects.

    Returns
    -------
    dict
        ``a_only`` (subjects only A gets right), ``b_only``, and ``p``: the two-sided
        binomial test of ``a_only`` out of ``a_only + b_only`` against 1/2
        (``min(1, 2 P(X <= min))``); 1 when the models never disagree.
    """
    labels = np.asarray(labels)
    right_a = np.asarray(pred_a) == labels
    right_b = np.asarray(pred_b) == labels
    a_only, b_only = int((right_a & ~right_b).sum()), int((~right_a & right_b).sum())
    n = a_only + b_only
    p = 1.0 if n == 0 else min(1.0, 2.0 * stats.binom.cdf(min(a_only, b_only), n, 0.5))
    return {"a_only": a_only, "b_only": b_only, "p": float(p)}


def bootstrap_auc_difference(
    labels: np.ndarray,
    prob_a: np.ndarray,
    prob_b: np.ndarray,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict:
    """Paired, class-stratified bootstrap of AUC(A) - AUC(B) on the same subjects.

    Returns
    -------
    dict
        ``difference`` (observed), ``low``, ``high`` (95 % percentile interval) and ``p``:
        two-sided bootstrap p-value, ``min(1, 2 min(P(d* <= 0), P(d* >= 0)))``.
    """
    labels = np.asarray(labels)
    prob_a, prob_b = np.asarray(prob_a), np.asarray(prob_b)
    observed = auc(labels, prob_a) - auc(labels, prob_b)
    values = stratified_bootstrap(
        labels,
        lambda r: auc(labels[r], prob_a[r]) - auc(labels[r], prob_b[r]),
        n_boot,
        np.random.default_rng(seed),
    )
    values = values[np.isfinite(values)]
    if values.size == 0:
        return {"difference": observed, "low": math.nan, "high": math.nan, "p": math.nan}
    return {"difference": observed, **bootstrap_difference_summary(values)}


def bootstrap_difference_summary(values: np.ndarray) -> dict:
    """95 % percentile interval and two-sided p of bootstrapped differences.

    Parameters
    ----------
    values : numpy.ndarray
        (n_boot,) finite bootstrap values of a difference A - B.

    Returns
    -------
    dict
        ``low``, ``high`` (2.5th and 97.5th percentiles) and ``p``:
        ``min(1, 2 min(P(d* <= 0), P(d* >= 0)))``.
    """
    low, high = np.percentile(values, [2.5, 97.5])
    p = min(1.0, 2.0 * min(np.mean(values <= 0), np.mean(values >= 0)))
    return {"low": low, "high": high, "p": float(p)}


def permutation_p(observed: float, null: np.ndarray) -> float:
    """``(1 + #{null >= observed}) / (1 + n)``: the permutation p-value (never 0)."""
    null = np.asarray(null, dtype=float)
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + null.size))
