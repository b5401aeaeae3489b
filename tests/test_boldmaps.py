"""fALFF and ReHo against values computed by hand on synthetic signals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from neurofusion.preprocessing.boldmaps import falff, reho
from neurofusion.preprocessing.denoise import denoise, denoise_series

TR = 2.0


def test_falff_of_a_pure_in_band_sine_is_one():
    n = 200  # 0.05 Hz falls on bin 20 of 200 samples at TR 2 s: no leakage
    t = np.arange(n) * TR
    series = np.sin(2 * np.pi * 0.05 * t)[:, None]
    assert falff(series, TR)[0] == pytest.approx(1.0, abs=1e-5)


def test_falff_of_an_out_of_band_sine_is_near_zero():
    t = np.arange(200) * TR
    assert falff(np.sin(2 * np.pi * 0.2 * t)[:, None], TR)[0] < 1e-4


def test_falff_of_white_noise_is_the_band_fraction_of_frequencies():
    n = 240
    freqs = np.fft.rfftfreq(n, TR)[1:]
    fraction = ((freqs >= 0.01) & (freqs <= 0.08)).mean()  # 34 of 120 bins
    noise = np.random.default_rng(0).standard_normal((n, 4000)).astype(np.float32)
    values = falff(noise, TR)
    assert values.dtype == np.float32
    assert values.mean() == pytest.approx(fraction, abs=0.005)


def test_falff_of_a_constant_is_zero_not_nan():
    assert falff(np.zeros((100, 3)), TR).tolist() == [0.0, 0.0, 0.0]


def test_denoise_keeps_its_output_and_exposes_the_unfiltered_series():
    rng = np.random.default_rng(1)
    bold = rng.standard_normal((5, 5, 5, 120)).astype(np.float32) + 100
    mask = np.zeros((5, 5, 5), bool)
    mask[1:4, 1:4, 1:4] = True
    confounds = rng.standard_normal((120, 2))
    for order in ("study", "simultaneous"):
        unfiltered, clean = denoise_series(bold, mask, np.eye(4), confounds, TR, order=order)
        image = denoise(bold, mask, np.eye(4), confounds, TR, order=order)
        assert np.allclose(image[mask], clean.T)
        # the unfiltered series keeps the out-of-band power (above 0 Hz) that the clean
        # series lost: white noise has most of it above 0.08 Hz
        spectrum = (np.abs(np.fft.rfft(unfiltered, axis=0)) ** 2)[1:]
        high = np.fft.rfftfreq(120, TR)[1:] > 0.08
        assert spectrum[high].sum() > 0.6 * spectrum.sum()


def _kendall_w(block: np.ndarray) -> float:
    """Kendall's W of (K raters, n items) by the textbook formula, via scipy's ranks."""
    k, n = block.shape
    ranks = np.apply_along_axis(stats.rankdata, 1, block)
    totals = ranks.sum(axis=0)
    return 12 * ((totals - totals.mean()) ** 2).sum() / (k**2 * (n**3 - n))


def test_reho_matches_kendalls_w_inside_and_at_the_mask_edge():
    rng = np.random.default_rng(2)
    bold = rng.standard_normal((6, 6, 6, 40)).astype(np.float32)
    bold += 0.8 * rng.standard_normal(40).astype(np.float32)  # shared signal: W well above 1/27
    mask = np.zeros((6, 6, 6), bool)
    mask[1:5, 1:5, 1:6] = True
    out = reho(bold, mask)
    inner = bold[1:4, 1:4, 1:4].reshape(27, 40)
    assert out[2, 2, 2] == pytest.approx(_kendall_w(inner), rel=1e-5)
    corner = mask[0:3, 0:3, 4:7]  # voxel (1, 1, 5): neighbours clipped by mask and volume
    edge = bold[0:3, 0:3, 4:6][corner[:, :, :2]]
    assert out[1, 1, 5] == pytest.approx(_kendall_w(edge), rel=1e-5)
    assert out[0, 0, 0] == 0
    assert np.isfinite(out).all()


def test_reho_of_identical_neighbours_is_one_and_of_noise_about_one_over_k():
    rng = np.random.default_rng(3)
    signal = rng.standard_normal(60).astype(np.float32)
    same = np.broadcast_to(signal, (5, 5, 5, 60)).copy()
    mask = np.ones((5, 5, 5), bool)
    assert reho(same, mask)[2, 2, 2] == pytest.approx(1.0)
    noise = rng.standard_normal((12, 12, 12, 60)).astype(np.float32)
    inner = reho(noise, np.ones((12, 12, 12), bool))[1:-1, 1:-1, 1:-1]
    # without agreement E[W] = 1/K for K raters (here K = 27)
    assert inner.mean() == pytest.approx(1 / 27, rel=0.1)
