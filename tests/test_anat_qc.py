"""Anatomical QC: MRIQC's metrics on simulated heads, and the cohort's outlier flags.

The heads are the simulator's anatomy (tiny preset grid, 2 x 2 x 2.66 mm) rendered as
MPRAGE-like T1 images with the simulator's own contrast, bias field and Rician noise, at
the stored scale of its DICOM (white matter about 1000). Each test changes one property
(noise, grey/white contrast, ghosting, blur) over four levels; the metric must move
monotonically in the direction MRIQC documents. The tissue probabilities are the truth.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage as ndi

from neurofusion.connectivity.settings import ConnectivitySettings
from neurofusion.qc.anat_metrics import ANAT_METRICS, image_quality
from neurofusion.qc.group import anat_outliers, robust_z, run_group_qc
from neurofusion.qc.outputs import group_qc_outputs
from neurofusion.qc.settings import QCSettings
from neurofusion.simulate import settings_from_config
from neurofusion.simulate.anatomy import T1_INTENSITY, T1_NOISE, T1_SCALE, rician, smooth_gain
from neurofusion.simulate.cohort import build_subject

#: Grey-matter intensity of the simulator (white matter 1).
GM = float(T1_INTENSITY[0])


class Head:
    """One simulated anatomy that renders T1 images of chosen quality."""

    def __init__(self, participant_id: str):
        settings = settings_from_config({"preset": "tiny", "seed": 0, "n_per_group": 1})
        subject = build_subject(participant_id, "HC", settings)
        sample = subject.anatomy.sample_grid(subject.t1_grid)
        self.fractions = sample.fractions
        self.gain = smooth_gain(subject.anatomy.bias, subject.t1_grid)
        self.zooms = np.abs(np.diag(subject.t1_grid.affine)[:3])
        self.probseg = {"GM": sample.fractions[0], "WM": sample.fractions[1]}

    def t1(self, gm=GM, noise=T1_NOISE, ghost=0.0, blur_voxels=0.0, seed=0) -> np.ndarray:
        """The T1 (stored scale) with grey-matter intensity ``gm``, noise SD ``noise``
        (relative to WM), a ``ghost`` copy shifted half the field of view along the
        phase-encoding axis, and Gaussian blur of SD ``blur_voxels``."""
        intensity = T1_INTENSITY.copy()
        intensity[0] = gm
        clean = np.tensordot(intensity, self.fractions, axes=1) * self.gain
        if ghost:
            clean = clean + ghost * np.roll(clean, clean.shape[1] // 2, axis=1)
        if blur_voxels:
            clean = ndi.gaussian_filter(clean, blur_voxels)
        return T1_SCALE * rician(clean, noise, np.random.default_rng(seed))

    def quality(self, **kwargs) -> dict[str, float]:
        return image_quality(self.t1(**kwargs), self.zooms, self.probseg)


@pytest.fixture(scope="module")
def head() -> Head:
    return Head("sub-001")


def _series(head: Head, metric: str, **levels) -> list[float]:
    ((name, values),) = levels.items()
    return [head.quality(**{name: value})[metric] for value in values]


def _increasing(values: list[float]) -> bool:
    return all(b > a for a, b in itertools.pairwise(values))


NOISE = (0.01, 0.02, 0.04, 0.08)
CONTRAST = (GM, 0.7, 0.78, 0.86)


@pytest.mark.parametrize("levels", [{"noise": NOISE}, {"gm": CONTRAST}])
def test_cnr_falls_and_cjv_rises_with_noise_or_lost_contrast(head, levels):
    cnr = _series(head, "cnr", **levels)
    cjv = _series(head, "cjv", **levels)
    assert _increasing([-c for c in cnr]), cnr
    assert _increasing(cjv), cjv


@pytest.mark.parametrize(
    "levels", [{"ghost": (0, 0.05, 0.1, 0.2)}, {"blur_voxels": (0, 0.5, 1, 2)}]
)
def test_efc_rises_with_ghosting_or_blur(head, levels):
    efc = _series(head, "efc", **levels)
    assert _increasing(efc), efc


def test_metrics_are_those_of_a_good_scan_and_fber_needs_air(head):
    """At the simulator's own quality: SNR of WM above GM's, CNR and FBER well above 1;
    with the background zeroed (as some anonymisers do) FBER is MRIQC's -1."""
    image = head.t1()
    q = image_quality(image, head.zooms, head.probseg)
    assert q["snr_wm"] > q["snr_gm"] > 1 and q["cnr"] > 1 and q["fber"] > 10, q
    assert 0 < q["efc"] < 1 and 0 < q["cjv"] < 1, q
    image[image < 0.1 * T1_SCALE] = 0
    assert image_quality(image, head.zooms, head.probseg)["fber"] == -1.0


def test_a_low_contrast_head_is_flagged_among_twelve_normal_ones():
    """Twelve scans of six anatomies with scanner-to-scanner spread (noise SD 1.5-3 % of
    WM, GM intensity 0.60-0.65, each its own noise draw) and one scan with the grey/white
    contrast of the real outlier (GM at 0.80 of WM): only that one is an outlier."""
    rng = np.random.default_rng(4)
    heads = [Head(f"sub-{i:03d}") for i in range(1, 7)]
    rows = []
    for scan in range(12):
        noise, gm = rng.uniform(0.015, 0.03), rng.uniform(0.60, 0.65)
        rows.append(heads[scan % 6].quality(gm=gm, noise=noise, seed=scan))
    rows.append(heads[0].quality(gm=0.80, seed=99))
    table = pd.DataFrame(rows).reindex(columns=list(ANAT_METRICS))
    flags = anat_outliers(table, QCSettings().anat_z_threshold)
    assert all(not f for f in flags[:12]), flags
    assert "cnr" in {f.split()[0] for f in flags[12]}, flags[12]


def test_robust_z():
    values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 100.0, np.nan])
    z = robust_z(values)
    # median 3.5, MAD 1.5: z = 0.6745 (x - 3.5) / 1.5
    assert np.allclose(z[:6], 0.6744897501960817 * (values[:6] - 3.5) / 1.5)
    assert z[5] > 40 and np.isnan(z[6])
    # MAD 0 (most values equal): the mean absolute deviation stands in.
    assert np.isfinite(robust_z(np.array([1.0, 1, 1, 1, 1, 2]))).all()
    assert (robust_z(np.ones(6)) == 0).all()
    assert np.isnan(robust_z(np.arange(4.0))).all()  # too few subjects


def _anat_only_cohort(tmp_path, action):
    rng = np.random.default_rng(0)
    subjects, groups = {}, {}
    for i in range(8):
        metrics = {m: float(rng.normal(1.0, 0.02)) for m in ANAT_METRICS}
        if i == 7:
            metrics["cnr"] = 0.5
        path = tmp_path / f"sub-{i}_desc-anat_qc.json"
        path.write_text(json.dumps({"participant_id": f"sub-{i}", **metrics}))
        subjects[str(i)], groups[str(i)] = {"anat_qc": path}, "HC" if i % 2 else "StD"
    settings = QCSettings.from_config({"anat": {"action": action, "z_threshold": 3.5}})
    return run_group_qc(subjects, groups, tmp_path, settings, ConnectivitySettings())


@pytest.mark.parametrize("action", ["flag", "exclude"])
def test_anatomy_only_group_qc_flags_or_excludes(tmp_path, action):
    outputs = _anat_only_cohort(tmp_path, action)
    assert (
        set(outputs)
        == set(group_qc_outputs(tmp_path, functional=False))
        == {
            "table",
            "exclusions",
        }
    )
    table = pd.read_csv(outputs["table"], sep="\t", keep_default_na=False)
    assert table["anat_outliers"].tolist()[:7] == [""] * 7
    assert table["anat_outliers"].iloc[7].startswith("cnr z=-")
    excluded = pd.read_csv(outputs["exclusions"], sep="\t")
    if action == "flag":
        assert excluded.empty
    else:
        assert excluded["participant_id"].tolist() == ["sub-7"]
        assert "anatomical QC outlier" in excluded["reason"].iloc[0]


def test_qc_anat_action_is_checked():
    with pytest.raises(ValueError, match=r"qc\.anat\.action"):
        QCSettings.from_config({"anat": {"action": "drop"}})
