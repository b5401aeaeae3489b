"""Nearest-neighbour search in the feature library by Euclidean distance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

from neurofusion.bids.participants import subject_label
from neurofusion.errors import InputError
from neurofusion.retrieval.library import Entries, library_folds, read_entries, subject_folds


def distances(queries: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """Euclidean distances between every query and every gallery vector.

    Parameters
    ----------
    queries : numpy.ndarray
        Shape (n_queries, dim) or (dim,).
    gallery : numpy.ndarray
        Shape (n_gallery, dim).

    Returns
    -------
    numpy.ndarray
        Shape (n_queries, n_gallery), float64, in the vectors' units.

    Raises
    ------
    ValueError
        When the vector lengths differ.
    """
    queries = np.atleast_2d(queries)
    gallery = np.asarray(gallery)
    if queries.shape[1] != gallery.shape[1]:
        raise ValueError(
            f"query vectors have length {queries.shape[1]} but the gallery's have "
            f"{gallery.shape[1]}; embed the query with the same model as the gallery"
        )
    return cdist(queries, gallery)


def ranking(distance: np.ndarray) -> np.ndarray:
    """Gallery indices from nearest to farthest, per query; ties keep gallery order.

    Parameters
    ----------
    distance : numpy.ndarray
        Shape (n_queries, n_gallery), from :func:`distances`.

    Returns
    -------
    numpy.ndarray
        Shape (n_queries, n_gallery), int.
    """
    return np.argsort(distance, axis=1, kind="stable")


def nearest(query: np.ndarray, gallery: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` gallery vectors nearest to one query.

    Only the ``k`` nearest are sorted (``argpartition``), so the cost is one pass over the
    gallery.

    Parameters
    ----------
    query : numpy.ndarray
        Shape (dim,).
    gallery : numpy.ndarray
        Shape (n_gallery, dim).
    k : int
        How many; at most the gallery size is returned.

    Returns
    -------
    indices : numpy.ndarray
        Shape (min(k, n_gallery),): gallery rows, nearest first (ties in gallery order).
    distance : numpy.ndarray
        Their Euclidean distances, same shape.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    query = np.asarray(query)
    if query.ndim != 1:
        raise ValueError(f"one query vector of shape (dim,) expected, got shape {query.shape}")
    distance = distances(query, gallery)[0]
    k = min(k, len(distance))
    candidates = np.argpartition(distance, k - 1)[:k] if k < len(distance) else np.arange(k)
    order = np.lexsort((candidates, distance[candidates]))
    indices = candidates[order]
    return indices, distance[indices]


def search_subject(
    library: str | Path, subject: str, model: str, k: int, fold: int | None = None
) -> pd.DataFrame:
    """The ``k`` subjects of the library nearest to one of its subjects.

    The subject's vector and the gallery come from one fold's model. Without ``fold``,
    that is the first fold in which the subject is a query (held out), so the model never
    saw the subject and the gallery holds that fold's training subjects. The subject itself
    is never among the answers.

    Parameters
    ----------
    library : str or Path
        The feature library (:func:`neurofusion.retrieval.library.write_library`).
    subject : str
        ``sub-X`` or ``X``.
    model : str
        Encoder name.
    k : int
        How many neighbours.
    fold : int, optional
        Fold whose model and gallery to use.

    Returns
    -------
    pandas.DataFrame
        ``rank``, ``participant_id``, ``distance`` (Euclidean, in embedding units),
        ``group`` and one column per metadata field, nearest first. ``attrs`` holds
        ``fold`` and ``query_group``.

    Raises
    ------
    InputError
        The subject is not in the library under ``model`` (or not in ``fold``).
    NeurofusionError
        No library, no such model or fold (from :func:`read_entries`).
    """
    participant_id = f"sub-{subject_label(subject)}"
    if fold is None:
        fold = _held_out_fold(library, model, participant_id)
    entries = read_entries(library, model, fold)
    if participant_id not in entries.participant_ids:
        raise _not_in_library(participant_id, library, f"model {model!r}, fold {fold}")
    position = list(entries.participant_ids).index(participant_id)
    is_gallery = np.asarray(entries.roles) == "gallery"
    is_gallery[position] = False
    rows = np.flatnonzero(is_gallery)
    indices, distance = nearest(entries.vectors[position], entries.vectors[rows], k)
    table = neighbours_table(entries, rows[indices], distance)
    table.attrs.update(fold=fold, query_group=entries.groups[position])
    return table


def _held_out_fold(library: str | Path, model: str, participant_id: str) -> int:
    """The first fold in which the subject is a query, else the first fold holding it."""
    library_folds(library, model)  # a missing library or model is named before the subject
    placed = subject_folds(library, model, participant_id)
    if placed.empty:
        raise _not_in_library(participant_id, library, f"model {model!r}")
    held_out = placed[placed["role"] == "query"]
    return int((held_out if len(held_out) else placed)["fold"].iloc[0])


def _not_in_library(participant_id: str, library: str | Path, where: str) -> InputError:
    return InputError(
        participant_id,
        library,
        f"not in the feature library for {where}",
        "check the label against participants.tsv (or choose another --fold), or rebuild "
        "the library after adding the subject",
    )


def neighbours_table(entries: Entries, rows: np.ndarray, distance: np.ndarray) -> pd.DataFrame:
    """The answer table of :func:`search_subject` for the given entry rows."""
    table = pd.DataFrame(
        {
            "rank": np.arange(1, len(rows) + 1),
            "participant_id": [entries.participant_ids[r] for r in rows],
            "distance": distance,
            "group": [entries.groups[r] for r in rows],
        }
    )
    metadata = pd.DataFrame([entries.metadata[r] for r in rows], index=table.index)
    return pd.concat([table, metadata.drop(columns=table.columns, errors="ignore")], axis=1)
