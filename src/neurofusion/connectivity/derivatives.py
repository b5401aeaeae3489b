"""Entry from existing derivatives: find and check each subject's region time series.

With ``input.kind: derivatives``, users of fMRIPrep + xcp_d, C-PAC or DPARSF bring their
own region time series (and/or T1w images already in MNI space, and/or confounds with
framewise displacement); the workflow checks them and goes straight to connectivity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from neurofusion.connectivity.readers import SUFFIXES, read_timeseries, region_count, suffix
from neurofusion.errors import InputError, NeurofusionError

#: ``input.derivatives`` keys, the files each glob finds, and the modality needing it.
ROLES = {"timeseries": "bold", "t1w_mni": "T1w", "confounds": None}


def find_derivatives(
    root: str | Path,
    subjects: Sequence[str],
    patterns: Mapping[str, str | None],
    modalities: Sequence[str],
) -> dict[str, dict[str, Path]]:
    """Locate every subject's derivative files with the configured globs.

    Parameters
    ----------
    root : path
        ``input.path``.
    subjects : sequence of str
        Participant labels.
    patterns : mapping
        ``input.derivatives``: ``timeseries``, ``t1w_mni``, ``confounds`` globs relative to
        ``root`` with ``{subject}`` for the label (``**`` descends folders), or None.
    modalities : sequence of str
        ``input.modalities``: ``bold`` needs ``timeseries``, ``T1w`` needs ``t1w_mni``.

    Returns
    -------
    dict
        ``{subject: {role: Path}}`` for every role with a glob.

    Raises
    ------
    NeurofusionError
        A required glob is unset, or subjects have no file or several; every such
        subject is listed with the fix.
    """
    root = Path(root)
    roles = {}
    for role, modality in ROLES.items():
        pattern = patterns.get(role)
        if pattern:
            roles[role] = pattern
        elif modality in modalities:
            raise NeurofusionError(
                f"config.yaml: input.derivatives.{role} is required when input.modalities "
                f"holds {modality}; set it to a glob such as 'sub-{{subject}}/**/*' under "
                f"{root}, or remove {modality} from input.modalities"
            )
    found: dict[str, dict[str, Path]] = {subject: {} for subject in subjects}
    problems = []
    for subject in subjects:
        for role, pattern in roles.items():
            matches = sorted(root.glob(pattern.format(subject=subject)))
            matches = [p for p in matches if p.is_file() and not p.name.endswith(".json")]
            if role == "timeseries":  # not fMRIPrep's confounds, also named *_timeseries.tsv
                matches = [
                    p for p in matches if suffix(p) in SUFFIXES and "desc-confounds" not in p.name
                ]
            if len(matches) == 1:
                found[subject][role] = matches[0]
            elif not matches:
                problems.append(f"sub-{subject}: no {role} file matches {pattern!r}")
            else:
                listed = ", ".join(str(p.relative_to(root)) for p in matches)
                problems.append(f"sub-{subject}: several {role} files match ({listed})")
    if problems:
        raise NeurofusionError(
            f"derivatives under {root}: " + "; ".join(problems) + ". Fix: make the globs "
            "under input.derivatives match exactly one file per participant, or remove the "
            "participants from participants.tsv"
        )
    return found


def expected_region_count(files: Mapping[str, Mapping[str, Path]]) -> int | None:
    """The most common region count of the subjects' time series (None when unknown).

    Read from headers only (``scipy.io.whosmat`` for ``.mat``), so it is cheap at
    start-up; a tie goes to the count of the first subject in participants order.
    """
    counts = [region_count(f["timeseries"]) for f in files.values() if "timeseries" in f]
    counts = [c for c in counts if c is not None]
    return Counter(counts).most_common(1)[0][0] if counts else None


def load_derivative_timeseries(
    path: str | Path,
    subject: str,
    min_timepoints: int = 50,
    expected_regions: int | None = None,
) -> tuple[np.ndarray, list[str] | None]:
    """Read and check one subject's region time series.

    A column that is NaN throughout (xcp_d writes ``n/a`` for a region below its own
    coverage threshold) is a region without signal and becomes a constant 0 column,
    which the coverage policy then handles; any other NaN or infinity is an error.

    Parameters
    ----------
    path : path
        The file (see :func:`~neurofusion.connectivity.readers.read_timeseries`).
    subject : str
        Participant label.
    min_timepoints : int
        Fewest time points accepted.
    expected_regions : int, optional
        Region count of the rest of the cohort.

    Returns
    -------
    series : numpy.ndarray
        Shape (n_timepoints, n_regions), finite.
    names : list of str or None
        Header names, if the file has them.

    Raises
    ------
    InputError
        Too few time points, NaN or infinite values, or a region count that differs from
        the rest of the cohort.
    """
    series, names = read_timeseries(path, subject)
    n_time, n_regions = series.shape
    if n_time < min_timepoints:
        raise InputError(
            subject,
            path,
            f"{n_time} time points (rows), fewer than the {min_timepoints} required "
            f"({n_regions} columns; the file must hold time points x regions)",
            "transpose a regions x time points table, or exclude the participant "
            "(preprocessing.func.min_volumes sets the limit)",
        )
    if expected_regions is not None and n_regions != expected_regions:
        raise InputError(
            subject,
            path,
            f"{n_regions} regions, while the other participants' files have {expected_regions}",
            "extract this participant's time series with the same atlas as the rest, or "
            "exclude the participant",
        )
    empty = np.isnan(series).all(axis=0)
    bad = ~np.isfinite(series[:, ~empty])
    if bad.any():
        rows, columns = np.nonzero(bad)
        column = np.flatnonzero(~empty)[columns[0]]
        raise InputError(
            subject,
            path,
            f"{bad.sum()} NaN or infinite value(s), first at time point {rows[0]} of "
            f"column {column}" + (f" ({names[column]})" if names else ""),
            "re-extract the time series (NaN usually comes from a region outside the brain "
            "mask in some volumes) or exclude the participant",
        )
    series[:, empty] = 0.0
    return series, names
