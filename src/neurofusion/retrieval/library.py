"""The feature library: every subject's embedding, per model and fold, in one SQLite file.

One row per (model, fold, subject): the subject's ``participant_id`` and ``group``, its
``role`` in that fold (``query``: the fold's test subjects, embedded by a model that never
saw them; ``gallery``: the fold's training subjects), the float32 vector (little-endian
BLOB) and the subject's participants.tsv columns as JSON text. An index on (model, fold)
serves the lookups of :mod:`.search` and :mod:`.evaluate`.

The final models (trained on every subject) add fold :data:`FINAL_FOLD`: every subject
as gallery, embedded by that model, whose weights, input scaling and input geometry are
stored in table ``final_models``, so that the library alone can embed a new subject
(:mod:`.new_subject`).
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from neurofusion.errors import NeurofusionError
from neurofusion.fileio import atomic_path

#: The fold number of the final models' entries (the cross-validation folds are 0 .. K-1).
FINAL_FOLD = -1
#: Roles of an entry within its fold.
ROLES = ("query", "gallery")
#: How the roles of a split file (:mod:`neurofusion.training.splits`) map to library roles.
SPLIT_ROLES = {"train": "gallery", "validation": "gallery", "test": "query"}
#: Columns of participants.tsv stored as columns of their own, not in the metadata JSON.
_OWN_COLUMNS = ("participant_id", "subject", "group")
_VECTOR_DTYPE = np.dtype("<f4")

_SCHEMA = """
CREATE TABLE entries (
    id INTEGER PRIMARY KEY,
    participant_id TEXT NOT NULL,
    "group" TEXT NOT NULL,
    model TEXT NOT NULL,
    fold INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('query', 'gallery')),
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    metadata TEXT NOT NULL,
    UNIQUE (model, fold, participant_id)
);
CREATE INDEX entries_model_fold ON entries (model, fold, role);
CREATE TABLE final_models (
    model TEXT PRIMARY KEY,
    artefact BLOB NOT NULL,
    inputs TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Entries:
    """Vectors of one model and fold, with their subjects, groups, roles and metadata.

    Parameters
    ----------
    model : str
        Name of the encoder (``cnn3d``, ``brainnetcnn``, ``fusion``).
    fold : int
        Outer fold of the model that embedded the subjects.
    participant_ids : sequence of str
        ``sub-<label>``, one per row of ``vectors``.
    groups : sequence of str
        Group of each subject (the relevance label of retrieval).
    roles : sequence of str
        ``query`` or ``gallery``, one per subject.
    vectors : numpy.ndarray
        Shape (n_subjects, dim), float32: the embeddings (unitless network features).
    metadata : sequence of dict, optional
        The subject's other participants.tsv columns (age, sex, ...); empty dicts if absent.
    """

    model: str
    fold: int
    participant_ids: Sequence[str]
    groups: Sequence[str]
    roles: Sequence[str]
    vectors: np.ndarray
    metadata: Sequence[dict] = field(default=())

    def __post_init__(self) -> None:
        vectors = np.asarray(self.vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be 2-D (subjects, dim), got shape {vectors.shape}")
        n = len(vectors)
        metadata = tuple(self.metadata) or ({},) * n
        lengths = {len(self.participant_ids), len(self.groups), len(self.roles), len(metadata)}
        if lengths != {n}:
            raise ValueError(
                f"{self.model} fold {self.fold}: {n} vectors but participant_ids, groups, roles "
                f"and metadata have lengths {sorted(lengths)}; give one of each per vector"
            )
        unknown = set(self.roles) - set(ROLES)
        if unknown:
            raise ValueError(f"roles must be {list(ROLES)}, got {sorted(unknown)}")
        if not np.isfinite(vectors).all():
            raise ValueError(f"{self.model} fold {self.fold}: vectors hold NaN or infinity")
        object.__setattr__(self, "vectors", vectors)
        object.__setattr__(self, "metadata", metadata)


def fold_entries(
    model: str,
    fold: int,
    split: pd.DataFrame,
    vectors: np.ndarray,
    participants: pd.DataFrame | None = None,
) -> Entries:
    """Library entries of one fold from its split table and the fold model's embeddings.

    Parameters
    ----------
    model, fold
        As in :class:`Entries`.
    split : pandas.DataFrame
        ``participant_id``, ``group`` and ``role`` (``train``, ``validation``, ``test``), as
        :func:`neurofusion.training.splits.read_split` returns; test subjects become
        queries, the others the gallery.
    vectors : numpy.ndarray
        Shape (len(split), dim): the embeddings, in the split's row order.
    participants : pandas.DataFrame, optional
        The table of :func:`neurofusion.bids.participants.load_participants`; its other
        columns become each entry's metadata.
    """
    ids = split["participant_id"].tolist()
    metadata: Sequence[dict] = ()
    if participants is not None:
        extra = participants.drop(columns=[c for c in _OWN_COLUMNS if c in participants])
        rows = extra.set_index(participants["participant_id"]).to_dict(orient="index")
        metadata = [rows.get(pid, {}) for pid in ids]
    return Entries(
        model=model,
        fold=fold,
        participant_ids=ids,
        groups=split["group"].tolist(),
        roles=[SPLIT_ROLES[role] for role in split["role"]],
        vectors=vectors,
        metadata=metadata,
    )


def write_library(
    path: str | Path,
    entries: Iterable[Entries],
    final_models: Mapping[str, tuple[Mapping, Mapping]] | None = None,
) -> Path:
    """Write a new feature library, atomically (a failure leaves no file behind).

    Parameters
    ----------
    path : str or Path
        The SQLite file; an existing one is replaced.
    entries : iterable of Entries
        Every model and fold. All folds of one model must share one vector length.
    final_models : mapping, optional
        ``{model: (artefact, inputs)}``: the final model's saved ``model.pt`` content
        (``state_dict``, ``scaler``) and the JSON-serialisable description of its inputs
        (grids, regions) that :mod:`.new_subject` needs.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    dims: dict[str, int] = {}
    with atomic_path(path) as tmp:
        connection = sqlite3.connect(tmp)
        try:
            connection.executescript(_SCHEMA)
            for block in entries:
                dim = dims.setdefault(block.model, block.vectors.shape[1])
                if block.vectors.shape[1] != dim:
                    raise ValueError(
                        f"{block.model} fold {block.fold}: vectors of length "
                        f"{block.vectors.shape[1]}, other folds have {dim}; one model, one length"
                    )
                rows = zip(
                    block.participant_ids,
                    block.groups,
                    block.roles,
                    block.vectors.astype(_VECTOR_DTYPE),
                    block.metadata,
                    strict=True,
                )
                connection.executemany(
                    'INSERT INTO entries (participant_id, "group", model, fold, role, dim, '
                    "vector, metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (pid, group, block.model, block.fold, role, dim, vec.tobytes(), _json(meta))
                        for pid, group, role, vec, meta in rows
                    ],
                )
            for model, (artefact, inputs) in (final_models or {}).items():
                buffer = io.BytesIO()
                torch.save(dict(artefact), buffer)
                connection.execute(
                    "INSERT INTO final_models (model, artefact, inputs) VALUES (?, ?, ?)",
                    (model, buffer.getvalue(), json.dumps(inputs, sort_keys=True)),
                )
            connection.commit()
        finally:
            connection.close()
    return path


def read_entries(path: str | Path, model: str, fold: int, role: str | None = None) -> Entries:
    """Entries of one model and fold (optionally one role), in the order they were written.

    Parameters
    ----------
    path : str or Path
        The library.
    model : str
        Encoder name.
    fold : int
        Outer fold.
    role : {"query", "gallery"}, optional
        Only entries of this role; all when omitted.

    Returns
    -------
    Entries
        ``vectors`` of shape (n, dim), float32.

    Raises
    ------
    NeurofusionError
        No library at ``path``, no entries of ``model``, or no ``fold`` for it; the
        message lists what the library holds.
    """
    if role is not None and role not in ROLES:
        raise ValueError(f"role must be one of {list(ROLES)}, got {role!r}")
    folds = library_folds(path, model)
    if fold == FINAL_FOLD:
        _require_final_model(path, model)
    elif fold not in folds:
        raise NeurofusionError(
            f"{path}: model {model!r} has no fold {fold}; it has folds {folds}. "
            "Choose one of them or rebuild the library"
        )
    query = (
        'SELECT participant_id, "group", role, dim, vector, metadata FROM entries '
        "WHERE model = ? AND fold = ?"
    )
    params: tuple = (model, fold)
    if role is not None:
        query += " AND role = ?"
        params += (role,)
    with _connect(path) as connection:
        rows = connection.execute(query + " ORDER BY id", params).fetchall()
    ids, groups, roles, dims, blobs, metadata = zip(*rows, strict=True) if rows else ((),) * 6
    dim = dims[0] if dims else 0
    vectors = np.frombuffer(b"".join(blobs), dtype=_VECTOR_DTYPE).reshape(len(rows), dim)
    return Entries(
        model=model,
        fold=fold,
        participant_ids=ids,
        groups=groups,
        roles=roles,
        vectors=vectors,
        metadata=[json.loads(text) for text in metadata],
    )


def library_folds(path: str | Path, model: str) -> list[int]:
    """Cross-validation folds of ``model`` in the library, ascending (not
    :data:`FINAL_FOLD`).

    Raises
    ------
    NeurofusionError
        No library at ``path`` or no entries of ``model`` (the message lists the models).
    """
    with _connect(path) as connection:
        folds = [
            fold
            for (fold,) in connection.execute(
                "SELECT DISTINCT fold FROM entries WHERE model = ? AND fold >= 0 ORDER BY fold",
                (model,),
            )
        ]
        if not folds:
            models = [m for (m,) in connection.execute("SELECT DISTINCT model FROM entries")]
    if not folds:
        raise NeurofusionError(
            f"{path}: no entries for model {model!r}; the library holds {sorted(models)}. "
            "Choose one of them, or build the library with that model (target `retrieval`)"
        )
    return folds


def subject_folds(path: str | Path, model: str, participant_id: str) -> pd.DataFrame:
    """Cross-validation folds and roles of one subject under ``model``: columns ``fold``
    and ``role``."""
    with _connect(path) as connection:
        rows = connection.execute(
            "SELECT fold, role FROM entries WHERE model = ? AND participant_id = ? "
            "AND fold >= 0 ORDER BY fold",
            (model, participant_id),
        ).fetchall()
    return pd.DataFrame(rows, columns=["fold", "role"])


def read_final_model(path: str | Path, model: str) -> tuple[dict, dict]:
    """The final model of ``model`` stored in the library: (artefact, inputs).

    Raises
    ------
    NeurofusionError
        No library, or no final model of ``model`` in it.
    """
    _require_final_model(path, model)
    with _connect(path) as connection:
        blob, inputs = connection.execute(
            "SELECT artefact, inputs FROM final_models WHERE model = ?", (model,)
        ).fetchone()
    artefact = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    return artefact, json.loads(inputs)


def _require_final_model(path: str | Path, model: str) -> None:
    """NeurofusionError naming the stored final models unless ``model`` is one of them."""
    with _connect(path) as connection:
        stored = [m for (m,) in connection.execute("SELECT model FROM final_models")]
    if model not in stored:
        raise NeurofusionError(
            f"{path}: no final model {model!r} to embed new images with; the library holds "
            f"final models {sorted(stored)}. Choose one of them, or rebuild the library with "
            "`snakemake retrieval` (it trains the final models)"
        )


@contextlib.contextmanager
def _connect(path: str | Path) -> Iterator[sqlite3.Connection]:
    """Read-only connection to an existing library, closed on exit."""
    path = Path(path)
    if not path.is_file():
        raise NeurofusionError(
            f"feature library {path} does not exist; build it with `snakemake retrieval` "
            "or give the right --library"
        )
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        yield connection
    finally:
        connection.close()


def _json(metadata: dict) -> str:
    """Metadata as key-sorted JSON; numpy scalars become plain numbers."""
    return json.dumps(metadata, sort_keys=True, default=lambda value: value.item())
