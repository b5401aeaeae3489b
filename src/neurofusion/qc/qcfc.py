"""QC-FC: how much each connectivity edge follows head motion across subjects.

For every edge, the Pearson correlation across subjects between its Fisher z and the
subject's mean framewise displacement (Power et al. 2012; Ciric et al., NeuroImage 2017).
Summaries: the percentage of edges with p < 0.05 (uncorrected), the median |r|, and the
distance dependence: Spearman's rank correlation between an edge's QC-FC r and the
Euclidean distance between its regions' centroids (mm), which is negative when motion
inflates short-range connectivity.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

#: Fewest subjects for a QC-FC correlation (n - 2 degrees of freedom must be >= 1).
MIN_SUBJECTS = 3


def edge_correlations(fc: np.ndarray, motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Correlation of each edge with motion across subjects, and its two-sided p-value.

    Parameters
    ----------
    fc : numpy.ndarray
        Shape (n_subjects, n_edges): connectivity (Fisher z) of each subject's edges.
    motion : numpy.ndarray
        Shape (n_subjects,): mean framewise displacement (mm).

    Returns
    -------
    r, p : numpy.ndarray
        Shape (n_edges,) each. NaN where the correlation is undefined: fewer than
        :data:`MIN_SUBJECTS` subjects, no spread of motion, or a constant edge.
    """
    n_subjects, n_edges = fc.shape
    nan = np.full(n_edges, np.nan)
    if n_subjects < MIN_SUBJECTS or np.ptp(motion) == 0:
        return nan, nan.copy()
    x = (motion - motion.mean()) / np.linalg.norm(motion - motion.mean())
    centred = fc - fc.mean(axis=0)
    norms = np.linalg.norm(centred, axis=0)
    r = np.divide(x @ centred, norms, out=nan.copy(), where=norms > 0)
    r = np.clip(r, -1.0, 1.0)
    df = n_subjects - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt(df / np.maximum(1 - r**2, 1e-300))
    p = 2 * stats.t.sf(np.abs(t), df)
    return r, p


def qcfc_summary(r: np.ndarray, p: np.ndarray, distance_mm: np.ndarray) -> dict:
    """Summary numbers of QC-FC.

    Parameters
    ----------
    r, p : numpy.ndarray
        Shape (n_edges,): :func:`edge_correlations`.
    distance_mm : numpy.ndarray
        Shape (n_edges,): centroid distance of each edge's regions (NaN when unknown).

    Returns
    -------
    dict
        ``n_edges`` (with a defined r), ``percent_edges_p_lt_0.05``, ``median_abs_r``,
        ``distance_dependence_r`` (Spearman); a value is None when it cannot be computed.
    """
    valid = np.isfinite(r)
    out = {
        "n_edges": int(valid.sum()),
        "percent_edges_p_lt_0.05": None,
        "median_abs_r": None,
        "distance_dependence_r": None,
    }
    if not valid.any():
        return out
    out["percent_edges_p_lt_0.05"] = float(100 * (p[valid] < 0.05).mean())
    out["median_abs_r"] = float(np.median(np.abs(r[valid])))
    both = valid & np.isfinite(distance_mm)
    if both.sum() >= MIN_SUBJECTS and np.ptp(r[both]) > 0:
        out["distance_dependence_r"] = float(stats.spearmanr(r[both], distance_mm[both])[0])
    return out


def qcfc_figure(r: np.ndarray, distance_mm: np.ndarray, summary: dict, out_png) -> None:
    """Histogram of QC-FC r and QC-FC r against edge distance (or a note why not)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    valid = np.isfinite(r)
    if valid.any():
        axes[0].hist(r[valid], bins=50, color="0.4")
        axes[0].set_xlabel("QC-FC r (edge Fisher z vs mean FD)")
        axes[0].set_ylabel("edges")
        axes[0].set_title(
            f"{summary['percent_edges_p_lt_0.05']:.1f} % edges p < 0.05, "
            f"median |r| {summary['median_abs_r']:.3f}"
        )
        both = valid & np.isfinite(distance_mm)
        axes[1].scatter(distance_mm[both], r[both], s=2, alpha=0.3, color="k")
        axes[1].set_xlabel("distance between region centroids (mm)")
        axes[1].set_ylabel("QC-FC r")
        dd = summary["distance_dependence_r"]
        axes[1].set_title(f"distance dependence (Spearman) {dd:.3f}" if dd is not None else "")
    else:
        for ax in axes:
            ax.axis("off")
        axes[0].text(
            0,
            0.5,
            f"QC-FC needs motion estimates of at least {MIN_SUBJECTS} retained subjects\n"
            "with different mean FD",
        )
    fig.tight_layout()
    fig.savefig(Path(out_png), dpi=100)
    plt.close(fig)
