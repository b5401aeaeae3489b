"""Region mean time series of the clean BOLD, and how well each region is covered.

Plain numpy rather than nilearn's ``NiftiLabelsMasker``: the clean BOLD is already
denoised, so the masker's cleaning is not wanted, and the coverage check needs, per
region, the voxels inside the brain mask *with a varying signal*, which the masker does
not report. One sort of the brain voxels by label and ``numpy.add.reduceat`` give every
region's sum in one pass (``benchmarks/bench_connectivity.py`` times both on a paper-sized
run).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class RegionSignals:
    """Region time series and coverage of one run.

    Attributes
    ----------
    series : numpy.ndarray
        Shape (n_timepoints, n_regions), float64: the mean over the region's voxels inside
        the brain mask with a varying signal; 0 for a region without such voxels.
    n_voxels : numpy.ndarray
        Shape (n_regions,), int: the region's voxels in the atlas on this grid.
    fraction_in_mask : numpy.ndarray
        Shape (n_regions,): fraction of those inside the brain mask (0 for an absent region).
    fraction_with_signal : numpy.ndarray
        Shape (n_regions,): fraction inside the mask *and* with a non-constant signal; the
        region's coverage.
    """

    series: np.ndarray
    n_voxels: np.ndarray
    fraction_in_mask: np.ndarray
    fraction_with_signal: np.ndarray


def region_signals(bold: np.ndarray, mask: np.ndarray, labels: np.ndarray, values) -> RegionSignals:
    """Mean time series and coverage of each atlas region.

    Parameters
    ----------
    bold : numpy.ndarray
        Shape (x, y, z, t): the clean BOLD.
    mask : numpy.ndarray
        Shape (x, y, z), bool: the brain mask.
    labels : numpy.ndarray
        Shape (x, y, z), int: atlas labels on the same grid (0 = none).
    values : sequence of int
        The regions' label values, in atlas order (the output's column order).

    Returns
    -------
    RegionSignals
    """
    values = np.asarray(values)
    lookup = np.full(max(int(labels.max()), int(values.max())) + 1, -1)
    lookup[values] = np.arange(len(values))
    position = np.where(labels > 0, lookup[np.clip(labels, 0, None)], -1)
    n_atlas = np.bincount(position[position >= 0], minlength=len(values))
    inside = mask & (position >= 0)
    in_mask = np.bincount(position[inside], minlength=len(values))
    series = bold[inside]
    varying = series.max(axis=1) > series.min(axis=1)
    series, region = series[varying], position[inside][varying]
    with_signal = np.bincount(region, minlength=len(values))
    order = np.argsort(region, kind="stable")
    present = np.flatnonzero(with_signal)
    starts = np.searchsorted(region[order], present)
    sums = np.add.reduceat(series[order], starts, axis=0, dtype=np.float64)
    out = np.zeros((bold.shape[-1], len(values)))
    out[:, present] = (sums / with_signal[present, None]).T
    total = np.maximum(n_atlas, 1)
    return RegionSignals(
        series=out,
        n_voxels=n_atlas,
        fraction_in_mask=in_mask / total,
        fraction_with_signal=with_signal / total,
    )
