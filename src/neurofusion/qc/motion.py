"""Per-subject motion summaries and the exclusion rules of the group QC."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurofusion.errors import InputError
from neurofusion.preprocessing.bold_reports import FD_THRESHOLD_MM
from neurofusion.qc.settings import QCSettings

#: Column of framewise displacement in a confounds table (fMRIPrep's name, Power's FD).
FD_COLUMN = "framewise_displacement"


def motion_summary(
    confounds: str | Path, subject: str, high_fd_mm: float = 0.5
) -> dict[str, float]:
    """Framewise-displacement summary of one run, from its confounds table.

    The definitions are those of the functional stage's QC JSON: the first volume's FD
    is 0 (no predecessor) and is left out of the mean, not out of the fractions.

    Parameters
    ----------
    confounds : path
        TSV with a ``framewise_displacement`` column (mm; fMRIPrep writes ``n/a`` for
        the first volume).
    subject : str
        Participant label, for errors.
    high_fd_mm : float
        Threshold of ``fraction_high_fd``.

    Returns
    -------
    dict
        ``n_volumes``, ``mean_fd_mm``, ``max_fd_mm``, ``percent_fd_over_0.5mm``,
        ``fraction_high_fd``.

    Raises
    ------
    InputError
        No ``framewise_displacement`` column.
    """
    table = pd.read_csv(confounds, sep="\t", usecols=lambda c: c == FD_COLUMN)
    if FD_COLUMN not in table:
        raise InputError(
            subject,
            confounds,
            f"the confounds table has no {FD_COLUMN} column",
            "point input.derivatives.confounds at fMRIPrep's desc-confounds_timeseries.tsv",
        )
    fd = table[FD_COLUMN].fillna(0.0).to_numpy(float)
    return {
        "n_volumes": len(fd),
        "mean_fd_mm": float(fd[1:].mean()) if len(fd) > 1 else 0.0,
        "max_fd_mm": float(fd.max()),
        f"percent_fd_over_{FD_THRESHOLD_MM:g}mm": float(100 * (fd > FD_THRESHOLD_MM).mean()),
        "fraction_high_fd": float((fd > high_fd_mm).mean()),
    }


def exclusion_reasons(row: Mapping[str, Any], settings: QCSettings) -> list[str]:
    """Why a subject is excluded (empty: kept), from its group QC row."""
    reasons = []
    mean_fd = row.get("mean_fd_mm")
    if mean_fd is not None and np.isfinite(mean_fd) and mean_fd > settings.max_mean_fd_mm:
        reasons.append(f"mean FD {mean_fd:.3f} mm > {settings.max_mean_fd_mm:g} mm")
    high = row.get("fraction_high_fd")
    if high is not None and np.isfinite(high) and high > settings.max_fraction_high_fd:
        reasons.append(
            f"{100 * high:.1f} % of volumes with FD > {settings.high_fd_mm:g} mm "
            f"(limit {100 * settings.max_fraction_high_fd:g} %)"
        )
    return reasons
