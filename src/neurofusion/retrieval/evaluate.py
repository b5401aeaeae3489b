"""Leak-free retrieval evaluation: per fold, the fold's queries against the fold's gallery.

For outer fold f, the queries are f's test subjects embedded by f's model and the gallery
is f's training subjects embedded by the same model; nothing of another fold enters. A
gallery entry is relevant to a query when it is in the query's group.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.preprocessing import StandardScaler

from neurofusion.evaluation.metrics import stratified_bootstrap
from neurofusion.evaluation.stats import bootstrap_difference_summary
from neurofusion.retrieval.library import Entries, library_folds, read_entries
from neurofusion.retrieval.metrics import (
    average_precision,
    precision_at_k,
    random_average_precision,
    recall_at_k,
)
from neurofusion.retrieval.search import distances, ranking

#: The per-query scores that :func:`summarise` averages (``ap`` becomes MAP).
SCORES = ("precision_at_k", "recall_at_k", "ap", "prior_ap")
#: Name of the class-prior baseline (a random ranking) in :func:`compare_maps`.
CLASS_PRIOR = "class_prior"


def ranked_relevance(
    query_vectors: np.ndarray,
    query_groups: Sequence[str],
    gallery_vectors: np.ndarray,
    gallery_groups: Sequence[str],
) -> np.ndarray:
    """Whether each gallery entry, nearest first, is in the query's group.

    Parameters
    ----------
    query_vectors, query_groups, gallery_vectors, gallery_groups
        As in :func:`retrieval_scores`.

    Returns
    -------
    numpy.ndarray
        Shape (n_queries, n_gallery), bool; row i follows query i's ranking.
    """
    query_groups = np.asarray(query_groups, dtype=object)
    gallery_groups = np.asarray(gallery_groups, dtype=object)
    order = ranking(distances(query_vectors, gallery_vectors))
    return gallery_groups[order] == query_groups[:, np.newaxis]


def retrieval_scores(
    query_vectors: np.ndarray,
    query_groups: Sequence[str],
    gallery_vectors: np.ndarray,
    gallery_groups: Sequence[str],
    k: int,
) -> pd.DataFrame:
    """Scores of every query against one gallery.

    Parameters
    ----------
    query_vectors : numpy.ndarray
        Shape (n_queries, dim).
    query_groups : sequence of str
        Group of each query, length n_queries.
    gallery_vectors : numpy.ndarray
        Shape (n_gallery, dim), same feature space as the queries.
    gallery_groups : sequence of str
        Group of each gallery entry, length n_gallery.
    k : int
        Cut-off of precision@k and recall@k.

    Returns
    -------
    pandas.DataFrame
        One row per query: ``group``, ``precision_at_k``, ``recall_at_k``, ``ap`` (average
        precision over the whole ranked gallery) and ``prior_ap`` (expected AP of a random
        ranking, the class-prior baseline), all fractions in [0, 1].
    """
    relevant = ranked_relevance(query_vectors, query_groups, gallery_vectors, gallery_groups)
    return pd.DataFrame(
        {
            "group": np.asarray(query_groups, dtype=object),
            "precision_at_k": precision_at_k(relevant, k),
            "recall_at_k": recall_at_k(relevant, k),
            "ap": average_precision(relevant),
            "prior_ap": random_average_precision(relevant.sum(axis=1), len(gallery_groups)),
        }
    )


def gallery_standardised(
    query_features: np.ndarray, gallery_features: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays z-scored per feature with the gallery's mean and SD only.

    Parameters
    ----------
    query_features, gallery_features : numpy.ndarray
        Shapes (n_queries, n_features) and (n_gallery, n_features).

    Returns
    -------
    tuple of numpy.ndarray
        The standardised query and gallery arrays, same shapes (float64).
    """
    scaler = StandardScaler().fit(gallery_features)
    return scaler.transform(query_features), scaler.transform(gallery_features)


def raw_feature_scores(
    query_features: np.ndarray,
    query_groups: Sequence[str],
    gallery_features: np.ndarray,
    gallery_groups: Sequence[str],
    k: int,
) -> pd.DataFrame:
    """:func:`retrieval_scores` on raw features, the baseline of the learned embeddings.

    Each feature (a connectivity edge, a downsampled T1 voxel) is z-scored with the mean
    and standard deviation of the gallery only, so the query subjects fit nothing, and
    features of different units weigh alike in the Euclidean distance.

    Parameters
    ----------
    query_features, gallery_features : numpy.ndarray
        Shapes (n_queries, n_features) and (n_gallery, n_features).
    query_groups, gallery_groups, k
        As in :func:`retrieval_scores`.
    """
    query, gallery = gallery_standardised(query_features, gallery_features)
    return retrieval_scores(
        query,
        query_groups,
        gallery,
        gallery_groups,
        k,
    )


def library_folds_entries(
    library: str | Path, model: str
) -> Iterator[tuple[int, Entries, Entries]]:
    """Each fold of one model in the library: ``(fold, queries, gallery)``.

    Parameters
    ----------
    library : str or Path
        The feature library.
    model : str
        Encoder name.
    """
    for fold in library_folds(library, model):
        yield (
            fold,
            read_entries(library, model, fold, "query"),
            read_entries(library, model, fold, "gallery"),
        )


def evaluate_library(library: str | Path, model: str, k: int) -> pd.DataFrame:
    """Per-query scores of one model, fold by fold, from the feature library.

    Parameters
    ----------
    library : str or Path
        The feature library.
    model : str
        Encoder name.
    k : int
        Cut-off of precision@k and recall@k.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`retrieval_scores` plus ``model``, ``fold`` and
        ``participant_id`` (the query), one row per query and fold.
    """
    tables = []
    for fold, queries, gallery in library_folds_entries(library, model):
        scores = retrieval_scores(
            queries.vectors, queries.groups, gallery.vectors, gallery.groups, k
        )
        scores.insert(0, "participant_id", list(queries.participant_ids))
        scores.insert(0, "fold", fold)
        scores.insert(0, "model", model)
        tables.append(scores)
    return pd.concat(tables, ignore_index=True)


def summarise(scores: pd.DataFrame) -> pd.DataFrame:
    """Means of per-query scores per fold and group, per fold, and over all folds.

    Parameters
    ----------
    scores : pandas.DataFrame
        From :func:`evaluate_library` (or :func:`retrieval_scores` with a ``fold`` column).

    Returns
    -------
    pandas.DataFrame
        ``fold`` (an int, or ``"all"`` for every query pooled), ``group`` (a group, or
        ``"all"``), ``n_queries``, ``precision_at_k``, ``recall_at_k``, ``map`` (mean AP)
        and ``prior_map`` (the class-prior baseline's MAP).
    """
    pooled = scores.assign(fold="all")
    rows = []
    for table in (scores, pooled):
        for keys in (["fold", "group"], ["fold"]):
            means = table.groupby(keys, sort=True)[list(SCORES)].mean()
            means.insert(0, "n_queries", table.groupby(keys, sort=True).size())
            rows.append(means.reset_index())
    summary = pd.concat(rows, ignore_index=True).fillna({"group": "all"})
    return summary.rename(columns={"ap": "map", "prior_ap": "prior_map"})[
        ["fold", "group", "n_queries", "precision_at_k", "recall_at_k", "map", "prior_map"]
    ]


def compare_maps(
    scores: pd.DataFrame,
    learned: Sequence[str],
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Paired bootstrap of MAP(learned) - MAP(baseline) over the same queries.

    Each learned feature set is compared with every other feature set of ``scores`` that
    is not learned (the raw-feature baselines) and with the class prior (each query's
    ``prior_ap``, the expected AP of a random ranking). Queries are paired by ``fold`` and
    ``participant_id`` and resampled with replacement within each group, so "above the
    baseline" and "within noise" have a stated interval.

    Parameters
    ----------
    scores : pandas.DataFrame
        Per-query scores with ``features``, ``fold``, ``participant_id``, ``group``,
        ``ap`` and ``prior_ap`` (as the retrieval stage writes them).
    learned : sequence of str
        The feature sets to test (the encoders).
    n_boot : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling.

    Returns
    -------
    pandas.DataFrame
        One row per (learned, baseline): ``features``, ``baseline``, ``n_queries``,
        ``map``, ``baseline_map``, ``difference``, ``low``, ``high`` (95 % percentile
        interval of the difference) and ``p`` (two-sided bootstrap p-value,
        ``min(1, 2 min(P(d* <= 0), P(d* >= 0)))``, as for the AUC differences).
    """
    keys = ["fold", "participant_id"]
    ap = scores.pivot_table(index=keys, columns="features", values="ap", sort=True)
    first = scores.drop_duplicates(keys).set_index(keys).loc[ap.index]
    ap[CLASS_PRIOR] = first["prior_ap"]
    groups = first["group"].to_numpy()
    baselines = [name for name in ap.columns if name not in learned]
    rows = []
    for name in learned:
        for baseline in baselines:
            pair = ap[[name, baseline]].dropna()
            difference = (pair[name] - pair[baseline]).to_numpy()
            values = stratified_bootstrap(
                groups[ap.index.get_indexer(pair.index)],
                lambda r, d=difference: d[r].mean(),
                n_boot,
                np.random.default_rng(seed),
            )
            rows.append(
                {
                    "features": name,
                    "baseline": baseline,
                    "n_queries": len(pair),
                    "map": pair[name].mean(),
                    "baseline_map": pair[baseline].mean(),
                    "difference": difference.mean(),
                    **bootstrap_difference_summary(values),
                }
            )
    return pd.DataFrame(rows)
