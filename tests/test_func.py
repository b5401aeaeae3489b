"""The functional workflow on the tiny simulated cohort, scored against the truth."""

from __future__ import annotations

import json

import ants
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.image import resample_to_img

from neurofusion.atlas import aal_image
from neurofusion.preprocessing.anat_outputs import anat_outputs
from neurofusion.preprocessing.anat_quality import mean_label_dice
from neurofusion.preprocessing.confounds import MOTION_COLUMNS
from neurofusion.preprocessing.denoise import bandpass, detrend_linear
from neurofusion.preprocessing.func import FuncSettings, run_func
from neurofusion.preprocessing.func_outputs import func_outputs
from neurofusion.templates import mni_t1

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

SUBJECTS = ["001", "002"]


def _paths(work, subject):
    deriv = work / "results" / "derivatives"
    truth = work / "results" / "simulated" / "truth" / f"sub-{subject}"
    return anat_outputs(deriv, subject), func_outputs(deriv, subject), truth


@pytest.mark.parametrize("subject", SUBJECTS)
def test_motion_estimates_match_the_truth(tiny_preprocessed, subject):
    _, func, truth = _paths(tiny_preprocessed, subject)
    estimate = pd.read_csv(func["confounds"], sep="\t")[list(MOTION_COLUMNS)].to_numpy()
    estimate[:, 3:] = np.rad2deg(estimate[:, 3:])
    true = pd.read_csv(truth / "motion.tsv", sep="\t")
    true = true.loc[true["dummy"] == 0, list(MOTION_COLUMNS)].to_numpy()
    assert true.std(axis=0).min() > 0.1  # there is motion to find
    error = estimate - true
    assert np.sqrt((error[:, :3] ** 2).mean()) <= 0.1  # mm
    assert np.sqrt((error[:, 3:] ** 2).mean()) <= 0.1  # degrees


@pytest.mark.parametrize("subject", SUBJECTS)
def test_true_epi_labels_land_on_the_mni_atlas(tiny_preprocessed, subject):
    anat, func, truth = _paths(tiny_preprocessed, subject)
    grid = mni_t1(3)
    warped = ants.apply_transforms(
        fixed=ants.from_nibabel_nifti(grid),
        moving=ants.image_read(str(truth / "bold_atlas-AAL116_dseg.nii.gz")),
        transformlist=[str(anat["t1w2mni_warp"]), str(anat["t1w2mni_affine"]),
                       str(func["boldref2t1w_xfm"])],
        whichtoinvert=[False, False, False],
        interpolator="genericLabel",
    ).numpy()  # fmt: skip
    atlas = np.asarray(resample_to_img(aal_image(), grid, interpolation="nearest").dataobj)
    assert mean_label_dice(warped.round(), atlas, np.unique(atlas[atlas > 0])) >= 0.7


@pytest.mark.parametrize("subject", SUBJECTS)
def test_clean_bold_is_band_limited(tiny_preprocessed, subject):
    _, func, _ = _paths(tiny_preprocessed, subject)
    bold = np.asarray(nib.load(func["clean_bold"]).dataobj)
    mask = np.asarray(nib.load(func["brain_mask"]).dataobj) > 0
    tr = json.loads(func["clean_bold_json"].read_text())["RepetitionTime"]
    power = np.abs(np.fft.rfft(bold[mask], axis=1)) ** 2
    freqs = np.fft.rfftfreq(bold.shape[-1], tr)
    inside = (freqs >= 0.01) & (freqs <= 0.08)
    assert power[:, inside].sum() > 0
    assert power[:, ~inside].sum() < 0.01 * power[:, inside].sum()


@pytest.mark.parametrize("subject", SUBJECTS)
def test_qc_numbers_agree_with_the_truth(tiny_preprocessed, subject):
    _, func, truth = _paths(tiny_preprocessed, subject)
    qc = json.loads(func["qc"].read_text())
    true = pd.read_csv(truth / "motion.tsv", sep="\t")
    true = true.loc[true["dummy"] == 0, list(MOTION_COLUMNS)].to_numpy()
    true[:, 3:] = np.deg2rad(true[:, 3:])
    diffs = np.abs(np.diff(true, axis=0))
    true_fd = diffs[:, :3].sum(axis=1) + 50 * diffs[:, 3:].sum(axis=1)
    assert qc["fd_mean_mm"] == pytest.approx(true_fd.mean(), abs=0.05)
    assert qc["brain_mask_dice_template"] > 0.85
    assert 10 < qc["tsnr_gm_median"] < 200
    assert qc["n_volumes"] == 60


def _region_courses(clean: nib.Nifti1Image, mask_file) -> tuple[np.ndarray, np.ndarray]:
    """Mean clean BOLD of each AAL region with at least 10 brain voxels (t x regions)."""
    data = np.asarray(clean.dataobj)
    mask = np.asarray(nib.load(mask_file).dataobj) > 0
    atlas = np.asarray(resample_to_img(aal_image(), clean, interpolation="nearest").dataobj)
    atlas = atlas[..., 0] if atlas.ndim == 4 else atlas
    labels = [v for v in range(1, 117) if ((atlas == v) & mask).sum() >= 10]
    courses = np.stack([data[(atlas == v) & mask].mean(axis=0) for v in labels], axis=1)
    return courses, np.array(labels) - 1


def _match(courses: np.ndarray, columns: np.ndarray, truth: np.ndarray, tr: float) -> float:
    reference = bandpass(detrend_linear(truth[:, columns]), tr, 0.01, 0.08)
    return float(np.mean([np.corrcoef(courses[:, i], reference[:, i])[0, 1]
                          for i in range(len(columns))]))  # fmt: skip


def test_slice_timing_correction_brings_time_courses_closer_to_the_truth(
    tiny_preprocessed, tmp_path
):
    subject = "001"
    anat, func, truth = _paths(tiny_preprocessed, subject)
    assert json.loads((truth / "group.json").read_text())["slice_order"] == "interleaved"
    raw = tiny_preprocessed / "results" / "rawdata" / f"sub-{subject}" / "func"
    uncorrected = run_func(
        subject,
        raw / f"sub-{subject}_task-rest_bold.nii.gz",
        raw / f"sub-{subject}_task-rest_bold.json",
        anat,
        tmp_path / "derivatives",
        tmp_path / "work",
        FuncSettings(slice_timing=False),
        threads=2,
    )
    true = pd.read_csv(truth / "timeseries.tsv", sep="\t").to_numpy()
    scores = {}
    for name, outputs in (("corrected", func), ("uncorrected", uncorrected)):
        courses, columns = _region_courses(nib.load(outputs["clean_bold"]), outputs["brain_mask"])
        scores[name] = _match(courses, columns, true, 2.0)
    assert scores["corrected"] > scores["uncorrected"]
    assert scores["corrected"] > 0.5
