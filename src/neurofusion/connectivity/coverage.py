"""Which regions a subject's matrix cannot trust, and what to do about them.

A region is *flagged* when it has no voxels on the grid, when less than
``min_coverage`` of its voxels lie in the brain mask with a varying signal (a short
field of view often misses the cerebellum), or when its time series is constant. Its
edges are set to 0 in both matrices (never NaN); ``low_coverage: error`` stops the
subject instead, and ``drop`` removes the region cohort-wide at the group stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from neurofusion.errors import InputError


def constant_columns(series: np.ndarray) -> np.ndarray:
    """Shape (n_regions,) bool: columns of a (t, n_regions) array with one value throughout."""
    return np.ptp(series, axis=0) == 0


def flag_regions(
    names: Sequence[str],
    series: np.ndarray,
    coverage: np.ndarray | None,
    min_coverage: float,
) -> dict[str, str]:
    """Flag the regions whose connectivity cannot be estimated.

    Parameters
    ----------
    names : sequence of str
        Region names, in column order.
    series : numpy.ndarray
        Shape (n_timepoints, n_regions): region time series.
    coverage : numpy.ndarray or None
        Shape (n_regions,): fraction of each region's atlas voxels in the brain mask with a
        varying signal; None when unknown (time series read from another pipeline).
    min_coverage : float
        Smallest acceptable coverage.

    Returns
    -------
    dict of str to str
        ``{region name: reason}`` in column order; empty when every region is usable.
    """
    constant = constant_columns(series)
    flagged = {}
    for index, name in enumerate(names):
        if coverage is not None and coverage[index] < min_coverage:
            flagged[name] = f"coverage {coverage[index]:.2f} < {min_coverage:g}"
        elif constant[index]:
            flagged[name] = "constant signal"
    return flagged


def enforce_policy(flagged: dict[str, str], policy: str, subject: str, source: str | Path) -> None:
    """Stop the subject when ``policy`` is ``error`` and a region is flagged.

    Raises
    ------
    InputError
        Naming the flagged regions and their reasons, ``source`` and the fix.
    """
    if policy == "error" and flagged:
        listed = "; ".join(f"{name} ({reason})" for name, reason in flagged.items())
        raise InputError(
            subject,
            source,
            f"{len(flagged)} region(s) are poorly covered or constant: {listed}",
            "set connectivity.low_coverage to 'zero' or 'drop', lower "
            "connectivity.min_coverage, or exclude the participant",
        )
