"""Voxel-wise maps of resting-state activity: fALFF and ReHo (inputs of early fusion).

Both are written here in vectorised numpy/scipy rather than taken from a package: nilearn
has neither, and the reference implementations (REST/DPARSF in MATLAB, AFNI's 3dReHo and
3dRSFC) are external programs. The definitions follow DPARSF:

fALFF (Zou et al., J Neurosci Methods 2008)
    The amplitude spectrum (square root of the power) summed over the low-frequency band
    (0.01-0.08 Hz), divided by the amplitude summed over every frequency above 0 Hz. It is
    computed on data that were confound-regressed, smoothed and detrended but not
    band-passed: after band-pass filtering the ratio would be 1 everywhere.
ReHo (Zang et al., NeuroImage 2004)
    Kendall's coefficient of concordance W of the time series of a voxel and its 26
    neighbours (the 3 x 3 x 3 cube), among those inside the brain mask, computed on the
    clean (band-passed) BOLD.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage as ndi


def falff(series: np.ndarray, tr: float, band_hz: Sequence[float] = (0.01, 0.08)) -> np.ndarray:
    """Fractional amplitude of low-frequency fluctuations of each column.

    Parameters
    ----------
    series : numpy.ndarray
        Shape (n_timepoints, n_voxels): detrended, *unfiltered* time series sampled every
        ``tr`` seconds.
    tr : float
        Sampling interval (s).
    band_hz : (float, float)
        Low-frequency band (Hz), inclusive.

    Returns
    -------
    numpy.ndarray
        Shape (n_voxels,), float32 in [0, 1]; 0 for a constant column (no fluctuation),
        never NaN.
    """
    n = len(series)
    freqs = np.fft.rfftfreq(n, d=tr)
    low, high = band_hz
    band = (freqs >= low) & (freqs <= high)
    amplitude = np.abs(np.fft.rfft(np.asarray(series, dtype=np.float32), axis=0))
    total = amplitude[1:].sum(axis=0, dtype=np.float64)
    inside = amplitude[band].sum(axis=0, dtype=np.float64)
    out = np.divide(inside, total, out=np.zeros_like(total), where=total > 0)
    return out.astype(np.float32)


def ranks_in_time(bold: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Ranks over time of every masked voxel's series, 0 elsewhere.

    Parameters
    ----------
    bold : numpy.ndarray
        Shape (x, y, z, t).
    mask : numpy.ndarray
        Shape (x, y, z), bool.

    Returns
    -------
    numpy.ndarray
        Shape (x, y, z, t), float32 ranks 1..t inside the mask (a constant series gets the
        mean rank (t + 1) / 2 at every time point, so it adds nothing to concordance), 0
        outside. Continuous data have no ties, so ties are not averaged otherwise.
    """
    series = bold[mask]
    ranks = np.empty(series.shape, dtype=np.float32)
    order = np.argsort(series, axis=1, kind="stable")
    np.put_along_axis(
        ranks, order, np.arange(1, series.shape[1] + 1, dtype=np.float32)[None], axis=1
    )
    constant = series.max(axis=1) == series.min(axis=1)
    ranks[constant] = (series.shape[1] + 1) / 2
    out = np.zeros(bold.shape, dtype=np.float32)
    out[mask] = ranks
    return out


def _box_sum(data: np.ndarray) -> np.ndarray:
    """Sum over the 3 x 3 x 3 cube around each voxel (zero padding), float32.

    In place when ``data`` is float32 (scipy's 1D filters work through line buffers).
    """
    out = data.astype(np.float32, copy=False)
    for axis in range(3):
        ndi.correlate1d(out, np.ones(3), axis=axis, output=out, mode="constant", cval=0.0)
    return out


def reho(bold: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Regional homogeneity: Kendall's W of each voxel's 27-voxel neighbourhood.

    ``W = 12 S / (K^2 (n^3 - n))`` where ``K`` is the number of neighbourhood voxels inside
    the mask, ``n`` the number of time points, ``R_t`` the sum of the ``K`` voxels' ranks at
    time ``t`` and ``S = sum_t (R_t - K (n + 1) / 2)^2``.

    Parameters
    ----------
    bold : numpy.ndarray
        Shape (x, y, z, t), the clean BOLD.
    mask : numpy.ndarray
        Shape (x, y, z), bool: the brain mask.

    Returns
    -------
    numpy.ndarray
        Shape (x, y, z), float32 in [0, 1], 0 outside the mask, never NaN.

    Notes
    -----
    Sums of integer ranks (at most 27 n) are exact in float32, so the box sums over the
    three axes lose nothing; the sums are made in place, so memory is one float32 copy of
    the 4D image besides the input.
    """
    n = bold.shape[-1]
    rank_sums = _box_sum(ranks_in_time(bold, mask))[mask]
    counts = _box_sum(mask.astype(np.float32))[mask]
    deviation = rank_sums - counts[:, None] * ((n + 1) / 2)
    s = np.einsum("vt,vt->v", deviation, deviation, dtype=np.float64)
    w = 12 * s / (counts.astype(np.float64) ** 2 * (n**3 - n))
    out = np.zeros(mask.shape, dtype=np.float32)
    out[mask] = np.clip(w, 0, 1)
    return out
