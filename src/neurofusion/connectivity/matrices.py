"""Pearson and Fisher-z connectivity matrices, written and read as labelled TSV files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from neurofusion.fileio import atomic_path

#: |r| is clipped to this before arctanh, so Fisher z stays finite (|z| <= 8.7).
R_MAX = 1 - 1e-7


def pearson(series: np.ndarray, flagged: np.ndarray | None = None) -> np.ndarray:
    """Pearson correlation between the columns of a time series.

    Parameters
    ----------
    series : numpy.ndarray
        Shape (n_timepoints, n_regions).
    flagged : numpy.ndarray, optional
        Shape (n_regions,) bool: regions whose edges are set to 0. Constant columns are
        always treated so.

    Returns
    -------
    numpy.ndarray
        Shape (n_regions, n_regions), float64, symmetric, values in [-1, 1], diagonal 1
        (also for flagged regions), never NaN.
    """
    data = np.asarray(series, dtype=np.float64)
    bad = np.ptp(data, axis=0) == 0
    if flagged is not None:
        bad |= np.asarray(flagged, dtype=bool)
    centred = data - data.mean(axis=0)
    norms = np.sqrt((centred**2).sum(axis=0))
    scaled = np.divide(centred, norms, out=np.zeros_like(centred), where=~bad)
    r = np.clip(scaled.T @ scaled, -1.0, 1.0)
    r = (r + r.T) / 2
    np.fill_diagonal(r, 1.0)
    return r


def fisher_z(r: np.ndarray) -> np.ndarray:
    """Fisher's z = arctanh(r), with |r| clipped to :data:`R_MAX` and a zero diagonal.

    The diagonal of a correlation matrix is 1, whose arctanh is infinite; it carries no
    information and is set to 0 (as nilearn's ``ConnectivityMeasure`` leaves it to the
    user, and BrainNetCNN inputs usually do). Edges that are 0 in ``r`` stay 0.

    Parameters
    ----------
    r : numpy.ndarray
        Shape (n, n) correlation matrix.

    Returns
    -------
    numpy.ndarray
        Shape (n, n), float64, symmetric, finite, zero diagonal.
    """
    z = np.arctanh(np.clip(r, -R_MAX, R_MAX))
    np.fill_diagonal(z, 0.0)
    return z


def write_relmat(path: str | Path, matrix: np.ndarray, names: Sequence[str]) -> Path:
    """Write a labelled square matrix as TSV, atomically.

    The first column, ``region``, holds the row names and the header the column names,
    so ``pandas.read_csv(path, sep="\\t", index_col=0)`` reads it back labelled.
    """
    table = pd.DataFrame(matrix, index=pd.Index(list(names), name="region"), columns=list(names))
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", float_format="%.8g", lineterminator="\n")
    return Path(path)


def read_relmat(path: str | Path) -> pd.DataFrame:
    """Read a matrix written by :func:`write_relmat` (index and columns: region names)."""
    return pd.read_csv(path, sep="\t", index_col=0)


def load_relmats(
    paths: Sequence[str | Path], keep: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Stack subjects' matrices for a model, optionally keeping only some regions.

    Parameters
    ----------
    paths : sequence of path
        :func:`write_relmat` files of the cohort, all with the same regions.
    keep : sequence of str, optional
        Region names to keep, e.g. the ``keep`` rows of the group stage's ``regions.tsv``
        (``connectivity.low_coverage: drop``); all regions when None.

    Returns
    -------
    matrices : numpy.ndarray
        Shape (n_subjects, n_regions, n_regions), float32.
    names : list of str
        The regions, in atlas order.
    """
    tables = [read_relmat(p) for p in paths]
    names = list(tables[0].columns)
    if keep is not None:
        wanted = set(keep)
        names = [n for n in names if n in wanted]
    for path, table in zip(paths, tables, strict=True):
        if list(table.columns) != list(tables[0].columns):
            raise ValueError(f"{path}: regions differ from those of {paths[0]}")
    return np.stack([t.loc[names, names].to_numpy(np.float32) for t in tables]), names
