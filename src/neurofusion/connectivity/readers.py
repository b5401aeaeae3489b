"""Region time series written by other pipelines: TSV, CSV, AFNI ``.1D``, MATLAB ``.mat``.

Every reader returns time points x regions, as fMRIPrep/xcp_d (TSV), C-PAC (CSV or
``.1D``), AFNI's ``3dROIstats``/``3dmaskave`` (``.1D``, ``#`` comments) and DPARSF
(``ROISignals`` in a ``.mat``) write them. Names come from a header row when the file
has one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import scipy.io

from neurofusion.errors import InputError

#: Variable DPARSF stores region time series in.
MAT_VARIABLE = "ROISignals"
#: File name endings the readers understand, by the column separator of text files.
SEPARATORS = {".tsv": "\t", ".csv": ",", ".1d": None, ".txt": None}
SUFFIXES = (*SEPARATORS, ".mat")


def suffix(path: str | Path) -> str:
    """The lower-case extension that selects a reader (``.tsv``, ``.1d``, ``.mat`` ...)."""
    return Path(path).suffix.lower()


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text.strip().lower() in {"n/a", "na", "nan", ""}
    return True


def read_timeseries(path: str | Path, subject: str) -> tuple[np.ndarray, list[str] | None]:
    """Read one subject's region time series.

    Parameters
    ----------
    path : path
        ``.tsv``, ``.csv`` (header row optional), ``.1D``/``.txt`` (whitespace separated,
        ``#`` comments) or ``.mat`` (variable ``ROISignals``).
    subject : str
        Participant label, for error messages.

    Returns
    -------
    series : numpy.ndarray
        Shape (n_timepoints, n_regions), float64; ``n/a`` cells become NaN.
    names : list of str or None
        The header's region names, or None when the file has none.

    Raises
    ------
    InputError
        Unknown extension, unreadable file, no ``ROISignals``, or not a 2D numeric table.
    """
    path = Path(path)
    kind = suffix(path)
    if kind not in SUFFIXES:
        raise InputError(
            subject,
            path,
            f"time series files must end in one of {', '.join(SUFFIXES)}",
            "convert the file, or make input.derivatives.timeseries match the right one",
        )
    names = None
    try:
        if kind == ".mat":
            series = _read_mat(path, subject)
        else:
            rows = pd.read_csv(
                path,
                sep=SEPARATORS[kind] or r"\s+",
                header=None,
                comment="#" if kind in (".1d", ".txt") else None,
                dtype=str,
                keep_default_na=False,
            )
            if not all(_is_number(cell) for cell in rows.iloc[0]):
                names = [str(cell).strip() for cell in rows.iloc[0]]
                rows = rows.iloc[1:]
            series = rows.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
            blank = rows.apply(lambda c: c.str.strip().str.lower()).isin(["n/a", "na", "nan", ""])
            if np.isnan(series[~blank.to_numpy()]).any():
                raise ValueError("cells that are neither numbers nor n/a")
    except (OSError, ValueError, NotImplementedError, pd.errors.ParserError) as err:
        raise InputError(
            subject,
            path,
            f"cannot read the region time series ({err})",
            "write it as a numeric table, one row per time point and one column per region",
        ) from err
    if series.ndim != 2 or min(series.shape) == 0:
        raise InputError(
            subject,
            path,
            f"expected a 2D table of time points x regions, found shape {series.shape}",
            "write one row per time point and one column per region",
        )
    return series, names


def _read_mat(path: Path, subject: str) -> np.ndarray:
    """``ROISignals`` of a MATLAB file (v4-v7.2; v7.3 files are HDF5, not readable here)."""
    content = scipy.io.loadmat(str(path))
    if MAT_VARIABLE not in content:
        variables = sorted(k for k in content if not k.startswith("__"))
        raise InputError(
            subject,
            path,
            f"no {MAT_VARIABLE} variable (found {', '.join(variables) or 'none'})",
            f"save the time points x regions array as {MAT_VARIABLE}, as DPARSF does",
        )
    return np.atleast_2d(np.asarray(content[MAT_VARIABLE], dtype=np.float64))


def region_count(path: str | Path) -> int | None:
    """Number of regions of a time series file, read cheaply (header line or ``whosmat``).

    Returns None when the file cannot be inspected; :func:`read_timeseries` then reports
    the problem in the subject's own job.
    """
    path = Path(path)
    kind = suffix(path)
    try:
        if kind == ".mat":
            shapes = dict((name, shape) for name, shape, _ in scipy.io.whosmat(str(path)))
            shape = shapes.get(MAT_VARIABLE)
            return int(shape[1]) if shape and len(shape) == 2 else None
        with open(path) as handle:
            for line in handle:
                if line.strip() and not (kind in (".1d", ".txt") and line.lstrip().startswith("#")):
                    return len(line.rstrip("\n").split(SEPARATORS.get(kind)))
    except (OSError, ValueError, NotImplementedError):
        return None
    return None
