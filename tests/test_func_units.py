"""Unit tests of the functional workflow's algorithms on signals with known answers."""

from __future__ import annotations

import json

import ants
import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage as ndi

from neurofusion.errors import InputError
from neurofusion.preprocessing.bold_input import load_bold
from neurofusion.preprocessing.confounds import dvars
from neurofusion.preprocessing.denoise import bandpass, denoise, detrend_linear, regress_out
from neurofusion.preprocessing.motion import (
    RigidRealigner,
    framewise_displacement_jenkinson,
    matrix_to_parameters,
    rigid_matrix,
)
from neurofusion.preprocessing.resample import compose_to_reference, resample_series
from neurofusion.preprocessing.slice_timing import (
    correct_slice_timing,
    resolve_slice_times,
    shift_series,
    slice_times_from_order,
)


def test_fourier_shift_recovers_a_delayed_sinusoid():
    tr, n = 2.0, 200
    t = np.arange(n) * tr
    for offset in (0.0, 0.7, 1.9):
        sampled = np.sin(2 * np.pi * 0.03 * (t + offset)) + 0.002 * (t + offset)
        target = np.sin(2 * np.pi * 0.03 * (t + 1.0)) + 0.002 * (t + 1.0)
        shifted = shift_series(sampled[None], (1.0 - offset) / tr)[0]
        assert np.abs(shifted - target)[10:-10].max() < 1e-3
        if offset != 1.0:
            assert np.abs(sampled - target)[10:-10].max() > 0.05


def test_slice_timing_aligns_slices_to_the_reference_time():
    tr, n = 2.0, 120
    times = slice_times_from_order("interleaved", 6, tr)
    reference = (times.min() + times.max()) / 2
    t = np.arange(n) * tr
    data = np.zeros((2, 2, 6, n), dtype=np.float32)
    for k, offset in enumerate(times):
        data[:, :, k] = 100 + np.sin(2 * np.pi * 0.04 * (t + offset))
    corrected = correct_slice_timing(data, times, tr, slice_axis=2)
    expected = 100 + np.sin(2 * np.pi * 0.04 * (t + reference))
    assert np.abs(corrected[0, 0] - expected)[:, 10:-10].max() < 2e-3


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("ascending", [0, 0.5, 1.0, 1.5]),
        ("descending", [1.5, 1.0, 0.5, 0]),
        ("interleaved", [0, 1.0, 0.5, 1.5]),
        ("siemens_interleaved", [1.0, 0, 1.5, 0.5]),
    ],
)
def test_fallback_slice_orders(order, expected):
    np.testing.assert_allclose(slice_times_from_order(order, 4, 2.0), expected)


def test_slice_timing_length_mismatch_is_an_error():
    with pytest.raises(InputError, match="SliceTiming lists 3 times but the image has 4 slices"):
        sidecar = {"RepetitionTime": 2, "SliceTiming": [0, 1, 0.5]}
        resolve_slice_times("01", "x.json", sidecar, 4, None)


def test_missing_slice_timing_without_fallback_is_an_error():
    with pytest.raises(InputError, match="no SliceTiming and no fallback"):
        resolve_slice_times("01", "x.json", {"RepetitionTime": 2}, 4, None)


def _bold(tmp_path, shape=(4, 4, 3, 70), sidecar=None, value=None):
    data = np.random.default_rng(0).normal(100, 1, shape).astype(np.float32)
    if value is not None:
        data[0, 0, 0, -1] = value
    path = tmp_path / "bold.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    side = tmp_path / "bold.json"
    side.write_text(json.dumps({"RepetitionTime": 2.0} if sidecar is None else sidecar))
    return path, side


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"shape": (4, 4, 3)}, "not a 4D time series"),
        ({"shape": (4, 4, 3, 55)}, "only 45 volumes remain after dropping 10"),
        ({"sidecar": {}}, "RepetitionTime is None"),
        ({"value": np.nan}, "1 voxels hold NaN or infinite values"),
    ],
)
def test_bad_bold_is_refused(tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message) as err:
        load_bold("07", *_bold(tmp_path, **kwargs), dummy_scans=10)
    assert str(err.value).startswith("sub-07:") and "Fix:" in str(err.value)


def test_load_bold_drops_dummies(tmp_path):
    img, sidecar = load_bold("07", *_bold(tmp_path), dummy_scans=10)
    assert img.shape == (4, 4, 3, 60) and img.get_data_dtype() == np.float32
    assert sidecar["RepetitionTime"] == 2.0


def test_bandpass_leaves_under_one_percent_outside_the_band():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((240, 500)).cumsum(axis=0)  # red noise, like drifting BOLD
    y = bandpass(detrend_linear(x), 2.0, 0.01, 0.08)
    power = np.abs(np.fft.rfft(y, axis=0)) ** 2
    freqs = np.fft.rfftfreq(240, 2.0)
    inside = (freqs >= 0.01) & (freqs <= 0.08)
    assert power[~inside].sum() < 0.01 * power[inside].sum()
    assert power[inside].sum() > 0


def test_regression_removes_confounds_and_keeps_signal():
    rng = np.random.default_rng(2)
    confound = rng.standard_normal((100, 2))
    signal = rng.standard_normal((100, 1))
    data = (50 + signal + confound @ np.array([[3.0], [-2.0]])).astype(np.float32)
    clean = regress_out(data, confound)
    assert abs(clean.mean() - 50) < 0.5
    assert np.corrcoef(clean[:, 0], signal[:, 0])[0, 1] > 0.95


@pytest.mark.parametrize("order", ["study", "simultaneous"])
def test_denoise_orders_are_band_limited_and_zero_outside_mask(order):
    rng = np.random.default_rng(3)
    bold = rng.normal(100, 5, (6, 6, 6, 120)).astype(np.float32)
    mask = np.zeros((6, 6, 6), bool)
    mask[1:5, 1:5, 1:5] = True
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    out = denoise(bold, mask, affine, rng.standard_normal((120, 2)), 2.0, order=order)
    assert np.all(out[~mask] == 0)
    power = np.abs(np.fft.rfft(out[mask], axis=1)) ** 2
    freqs = np.fft.rfftfreq(120, 2.0)
    inside = (freqs >= 0.01) & (freqs <= 0.08)
    assert power[:, ~inside].sum() < 1e-6 * power[:, inside].sum()


def test_rigid_parameters_round_trip():
    params = np.array([1.5, -2.0, 0.3, 0.02, -0.05, 0.1])
    np.testing.assert_allclose(matrix_to_parameters(rigid_matrix(params)), params, atol=1e-12)


def test_jenkinson_fd_of_a_pure_translation():
    poses = np.stack([np.eye(4), rigid_matrix(np.array([0.3, 0.4, 0, 0, 0, 0]))])
    np.testing.assert_allclose(framewise_displacement_jenkinson(poses), [0, 0.5])


def _blob(affine, shape=(40, 40, 30)):
    """A smooth, asymmetric head-like image on a grid, defined in world mm."""
    ijk = np.indices(shape).reshape(3, -1)
    xyz = affine[:3, :3] @ ijk + affine[:3, 3:4]
    r = np.sqrt((((xyz - [[5.0], [-8.0], [3.0]]) / [[50.0], [60.0], [40.0]]) ** 2).sum(0))
    image = 1000 / (1 + np.exp((r - 1) * 12)) * (1 + 0.3 * np.sin(xyz[0] / 9) * np.cos(xyz[1] / 13))
    return image.reshape(shape).astype(np.float32)


def test_realigner_recovers_a_known_rigid_motion():
    affine = np.diag([4.0, 4.0, 5.0, 1.0])
    affine[:3, 3] = [-78, -78, -72]
    reference = _blob(affine)
    truth = rigid_matrix(np.array([0.6, -0.4, 0.3, np.deg2rad(0.8), np.deg2rad(-0.5), 0.01]))
    # the moved image: sample the reference at inv(truth) of each voxel's position
    ijk = np.indices(reference.shape).reshape(3, -1)
    xyz = np.vstack([affine[:3, :3] @ ijk + affine[:3, 3:4], np.ones(ijk.shape[1])])
    source = np.linalg.inv(affine) @ np.linalg.inv(truth) @ xyz
    moved = ndi.map_coordinates(reference, source[:3], order=3).reshape(reference.shape)
    estimate = RigidRealigner(reference, affine).register(moved)
    error = matrix_to_parameters(estimate) - matrix_to_parameters(truth)
    assert np.abs(error[:3]).max() < 0.05 and np.rad2deg(np.abs(error[3:])).max() < 0.05


def test_resampler_matches_ants_linear_interpolation(tmp_path):
    affine = np.diag([4.0, 4.0, 5.0, 1.0])
    affine[:3, 3] = [-78, -78, -72]
    vol = _blob(affine)
    bold = nib.Nifti1Image(np.stack([vol, vol], axis=-1), affine)
    target = nib.Nifti1Image(np.zeros((30, 34, 28), np.float32), np.diag([5.0, 5.0, 5.0, 1]))
    target.affine[:3, 3] = [-70, -80, -65]
    target = nib.Nifti1Image(np.zeros((30, 34, 28), np.float32), target.affine)
    # static chain: a small rigid transform written as an ITK file, composed by ANTs
    tx = ants.create_ants_transform(dimension=3)
    tx.set_parameters([1, 0.02, 0, -0.02, 1, 0, 0, 0, 1, 2.0, -1.0, 0.5])
    ants.write_transform(tx, str(tmp_path / "static.mat"))
    moving = nib.Nifti1Image(vol, affine)
    field = compose_to_reference(
        target, moving, [tmp_path / "static.mat"], [False], tmp_path / "c_"
    )
    pose = rigid_matrix(np.array([0.5, 0, 0, 0, 0, 0]))
    mine = resample_series(bold, target, np.stack([np.eye(4), pose]), field, order=1)
    expected = ants.apply_transforms(
        fixed=ants.from_nibabel_nifti(target),
        moving=ants.from_nibabel_nifti(nib.Nifti1Image(vol, affine)),
        transformlist=[str(tmp_path / "static.mat")],
        whichtoinvert=[False],
        interpolator="linear",
    ).numpy()
    inside = expected > 50
    assert inside.sum() > 1000
    got = np.asarray(mine.dataobj)[..., 0]
    assert np.abs(got[inside] - expected[inside]).max() < 0.01 * expected.max()
    # Restricted to a region, the same values inside it (cubic too) and zeros outside.
    region = np.zeros(target.shape, dtype=bool)
    region[5:20, 8:30, 3:17] = True
    for order in (1, 3):
        full = np.asarray(resample_series(bold, target, np.stack([np.eye(4), pose]), field,
                                          order=order).dataobj)  # fmt: skip
        part = np.asarray(resample_series(bold, target, np.stack([np.eye(4), pose]), field,
                                          order=order, region=region).dataobj)  # fmt: skip
        assert np.array_equal(part[region], full[region]) and full[region].max() > 500
        assert not part[~region].any()


def test_dvars_equals_nipypes_reference_implementation(tmp_path):
    from nipype.algorithms.confounds import compute_dvars

    rng = np.random.default_rng(4)
    data = rng.normal(500, 20, (8, 8, 6, 40)).cumsum(axis=3).astype(np.float32) / 10
    data[0] = 0  # constant voxels inside the mask, as at the edge of a field of view
    mask = np.ones((8, 8, 6), np.uint8)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "bold.nii.gz")
    nib.save(nib.Nifti1Image(mask, np.eye(4)), tmp_path / "mask.nii.gz")
    std, nstd, _ = compute_dvars(tmp_path / "bold.nii.gz", tmp_path / "mask.nii.gz", True)
    raw, standardised = dvars(data[mask > 0])
    assert raw[0] == 0 and standardised[0] == 0
    np.testing.assert_allclose(raw[1:], nstd, rtol=1e-4)
    np.testing.assert_allclose(standardised[1:], std, rtol=1e-4)
