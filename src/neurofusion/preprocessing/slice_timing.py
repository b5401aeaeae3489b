"""Slice-timing correction by Fourier (sinc) phase shift, as SPM's ``spm_slice_timing``
and AFNI's ``3dTshift -Fourier`` do.

No nipype interface of this exists without SPM, FSL or AFNI installed, so it is written
here: each slice's voxel time series is shifted by ``(t_ref - t_slice) / TR`` samples
through a linear phase ramp in the frequency domain. Before the FFT the linear trend is
removed and the series is mirror-padded, so that the circular shift does not wrap the end
of the run onto its start; the trend is added back at the shifted times.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neurofusion.errors import InputError

#: Slice orders the fallback understands (when the sidecar has no SliceTiming).
FALLBACK_ORDERS = ("ascending", "descending", "interleaved", "siemens_interleaved")


def slice_times_from_order(order: str, n_slices: int, tr: float) -> np.ndarray:
    """Acquisition time of each slice (s) for a named order, slices evenly spread over TR.

    Parameters
    ----------
    order : str
        ``ascending`` (0, 1, 2, ...), ``descending``, ``interleaved`` (0, 2, 4, ...,
        then 1, 3, ...) or ``siemens_interleaved`` (like interleaved for an odd number of
        slices; for an even number the odd-indexed slices come first, as Siemens does).
    n_slices : int
        Number of slices along the slice axis.
    tr : float
        Repetition time (s).

    Returns
    -------
    numpy.ndarray
        Shape (n_slices,), slice times in s, indexed by slice position.
    """
    positions = np.arange(n_slices)
    if order == "ascending":
        acquisition = positions
    elif order == "descending":
        acquisition = positions[::-1]
    elif order in ("interleaved", "siemens_interleaved"):
        evens, odds = positions[0::2], positions[1::2]
        odd_first = order == "siemens_interleaved" and n_slices % 2 == 0
        acquisition = np.concatenate([odds, evens] if odd_first else [evens, odds])
    else:
        raise ValueError(f"unknown slice order {order!r}; use one of {FALLBACK_ORDERS}")
    times = np.empty(n_slices)
    times[acquisition] = np.arange(n_slices) * tr / n_slices
    return times


def resolve_slice_times(
    subject: str,
    path: str,
    sidecar: dict,
    n_slices: int,
    fallback_order: str | None,
) -> np.ndarray:
    """The slice times to correct with: the sidecar's, else the configured fallback order.

    Raises
    ------
    InputError
        When SliceTiming has the wrong length, or is absent and no fallback is configured.
    """
    tr = float(sidecar["RepetitionTime"])
    times = sidecar.get("SliceTiming")
    if times:
        times = np.asarray(times, dtype=float)
        if times.shape != (n_slices,):
            raise InputError(
                subject,
                path,
                f"SliceTiming lists {times.size} times but the image has {n_slices} slices",
                "fix SliceTiming in the sidecar (one time per slice, in seconds)",
            )
        if times.min() < 0 or times.max() >= tr:
            raise InputError(
                subject,
                path,
                f"SliceTiming spans {times.min():.3f}-{times.max():.3f} s, outside the TR "
                f"of {tr} s",
                "SliceTiming must be in seconds from the start of each volume",
            )
        return times
    if fallback_order is None:
        raise InputError(
            subject,
            path,
            "the BOLD sidecar has no SliceTiming and no fallback slice order is configured",
            "set preprocessing.func.slice_timing.fallback_order (ascending, descending, "
            "interleaved or siemens_interleaved), or switch slice timing off with "
            "preprocessing.func.slice_timing.enabled: false",
        )
    return slice_times_from_order(fallback_order, n_slices, tr)


def shift_series(series: np.ndarray, shift: float) -> np.ndarray:
    """Resample time series at ``t + shift`` samples by a Fourier phase ramp.

    Parameters
    ----------
    series : numpy.ndarray
        Shape (n_series, n_timepoints), float.
    shift : float
        Shift in samples: ``out[:, n] = series(n + shift)``.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``series``.
    """
    n = series.shape[-1]
    t = np.arange(n, dtype=np.float64)
    # Linear trend from the end points, so the padded series is continuous.
    slope = (series[..., -1:] - series[..., :1]) / max(n - 1, 1)
    trend = series[..., :1] + slope * t
    detrended = series - trend
    padded = np.concatenate([detrended, detrended[..., ::-1]], axis=-1)
    n_fft = padded.shape[-1]
    freqs = np.fft.rfftfreq(n_fft)
    spectrum = np.fft.rfft(padded, axis=-1) * np.exp(2j * np.pi * freqs * shift)
    shifted = np.fft.irfft(spectrum, n=n_fft, axis=-1)[..., :n]
    return (shifted + series[..., :1] + slope * (t + shift)).astype(series.dtype)


def correct_slice_timing(
    data: np.ndarray, slice_times: Sequence[float], tr: float, slice_axis: int = 2
) -> np.ndarray:
    """Shift every slice's time series to the middle of the slice acquisition window.

    The reference time is halfway between the first and the last slice, fMRIPrep's
    default (``slice_time_ref`` 0.5): the middle of the TR when the slices fill it, and
    never a time no slice was acquired near.

    Parameters
    ----------
    data : numpy.ndarray
        4D BOLD, shape (x, y, z, t), float32.
    slice_times : sequence of float
        Acquisition time (s) of each slice along ``slice_axis``.
    tr : float
        Repetition time (s).
    slice_axis : int
        Voxel axis (0, 1 or 2) along which the slices are stacked.

    Returns
    -------
    numpy.ndarray
        Corrected data, same shape, float32: each voxel's sample ``n`` estimates the
        signal at ``n * TR + (min(slice_times) + max(slice_times)) / 2``.
    """
    reference = (min(slice_times) + max(slice_times)) / 2.0
    out = np.empty(data.shape, dtype=np.float32)
    moved = np.moveaxis(data, slice_axis, 0)
    moved_out = np.moveaxis(out, slice_axis, 0)
    for index, time in enumerate(slice_times):
        slab = moved[index].reshape(-1, data.shape[-1]).astype(np.float64)
        corrected = shift_series(slab, (reference - time) / tr)
        moved_out[index] = corrected.reshape(moved[index].shape)
    return out
