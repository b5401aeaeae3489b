"""Retrieval metrics of the companion study: precision@k, recall@k, average precision.

Each function takes ``relevant``, a boolean array of shape (n_queries, n_gallery) (or
(n_gallery,) for one query) in rank order: ``relevant[q, r]`` is true when the gallery
entry ranked ``r + 1`` for query ``q`` is in the query's group. A query's relevant set is
every gallery entry of its group, so recall and average precision are over the full
ranked gallery. Queries with no relevant entry get NaN recall and average precision.
"""

from __future__ import annotations

import numpy as np


def precision_at_k(relevant: np.ndarray, k: int) -> np.ndarray:
    """Share of relevant entries among the first ``k``, shape (n_queries,).

    With fewer than ``k`` gallery entries, the share among all of them.
    """
    top = _ranked(relevant)[:, : _check_k(k)]
    return top.mean(axis=1)


def recall_at_k(relevant: np.ndarray, k: int) -> np.ndarray:
    """Share of all relevant gallery entries found among the first ``k``, shape (n_queries,)."""
    relevant = _ranked(relevant)
    found = relevant[:, : _check_k(k)].sum(axis=1)
    return _divide(found, relevant.sum(axis=1))


def average_precision(relevant: np.ndarray) -> np.ndarray:
    """Mean of precision@r over the ranks r of the relevant entries, shape (n_queries,)."""
    relevant = _ranked(relevant)
    ranks = np.arange(1, relevant.shape[1] + 1)
    precision = np.cumsum(relevant, axis=1) / ranks
    return _divide((precision * relevant).sum(axis=1), relevant.sum(axis=1))


def random_average_precision(n_relevant: np.ndarray, n_gallery: int) -> np.ndarray:
    """Expected average precision of a uniformly random ranking: the class-prior baseline.

    A relevant entry at rank r has, on average, ``(r - 1)(R - 1)/(N - 1)`` other relevant
    entries above it, and r is uniform on 1..N, so

    ``E[AP] = (R - 1)/(N - 1) + (N - R)/(N - 1) * H_N / N``

    with ``H_N`` the N-th harmonic number. It tends to R/N, the class's share of the
    gallery, as N grows.

    Parameters
    ----------
    n_relevant : array_like of int
        R, the number of gallery entries of each query's group.
    n_gallery : int
        N, the gallery size.

    Returns
    -------
    numpy.ndarray
        Expected AP per query, NaN where R is 0.
    """
    n_relevant = np.asarray(n_relevant, dtype=float)
    if n_gallery == 1:
        return np.where(n_relevant > 0, 1.0, np.nan)
    harmonic = np.sum(1.0 / np.arange(1, n_gallery + 1))
    expected = (n_relevant - 1) / (n_gallery - 1) + (n_gallery - n_relevant) / (
        n_gallery - 1
    ) * harmonic / n_gallery
    return np.where(n_relevant > 0, expected, np.nan)


def _ranked(relevant: np.ndarray) -> np.ndarray:
    """``relevant`` as a 2-D boolean array (one row per query)."""
    relevant = np.asarray(relevant, dtype=bool)
    return relevant[np.newaxis] if relevant.ndim == 1 else relevant


def _check_k(k: int) -> int:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    return k


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, NaN where the denominator is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)
