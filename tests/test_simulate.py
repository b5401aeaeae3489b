"""Tests of the simulator: geometry through dcm2niix, reproducibility, planted effects, truth."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

nib = pytest.importorskip("nibabel")

from neurofusion import atlas  # noqa: E402
from neurofusion.simulate import (  # noqa: E402
    CONTROL_GROUP,
    PATIENT_GROUP,
    PRESETS,
    cohort_participants,
    command,
    settings_from_config,
    simulate_subject,
    simulate_truth,
)
from neurofusion.simulate.cohort import build_subject  # noqa: E402
from neurofusion.simulate.function import NETWORKS, VENTRAL_STRIATUM, members  # noqa: E402

TINY = {"preset": "tiny", "seed": 7}
PLANTED = ("Pallidum_L", "Pallidum_R", "Precentral_L", "Precentral_R")


def dcm2niix(series: Path, out: Path) -> tuple[nib.Nifti1Image, dict]:
    """Convert one series folder with dcm2niix; return the image and its sidecar."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["dcm2niix", "-z", "y", "-b", "y", "-f", "img", "-o", str(out), str(series)],
        check=True,
        capture_output=True,
    )
    return nib.load(out / "img.nii.gz"), json.loads((out / "img.json").read_text())


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """One tiny subject (StD, interleaved) made through the ``simulate`` subcommand."""
    out = tmp_path_factory.mktemp("sim")
    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers())
    args = parser.parse_args(
        ["simulate", "--preset", "tiny", "--seed", "7", "--out", str(out), "--subjects", "sub-001"]
    )
    assert args.func(args) == 0
    return out


@pytest.fixture(scope="module")
def ascending(tmp_path_factory) -> Path:
    """The same subject with ascending slices (DICOM and truth folders' parent)."""
    out = tmp_path_factory.mktemp("asc")
    settings = settings_from_config({**TINY, "slice_order": "ascending"})
    simulate_subject("sub-001", PATIENT_GROUP, settings, out / "dicom", out / "truth")
    return out


def test_settings_presets_and_validation():
    demo = settings_from_config({})
    assert demo.preset == "demo" and demo.n_per_group == {"StD": 8, "HC": 8}
    paper = settings_from_config({"preset": "paper"})
    assert (paper.n_patients, paper.n_controls, paper.n_volumes) == (56, 70, 240)
    assert paper.t1_voxel_mm == (1.0, 1.0, 1.33) and paper.bold_voxel_mm == (3.0, 3.0, 4.8)
    assert settings_from_config({"preset": "tiny"}).n_volumes >= 60
    mixed = settings_from_config({"n_per_group": {"StD": 2, "HC": 5}, "effect_size": 0})
    assert mixed.n_per_group == {"StD": 2, "HC": 5} and mixed.connectivity_effect_size == 0.0
    assert set(PRESETS) == {"tiny", "demo", "paper"}
    with pytest.raises(ValueError, match="bogus"):
        settings_from_config({"bogus": 1})
    with pytest.raises(ValueError, match="effect_size"):
        settings_from_config({"effect_size": -1})
    with pytest.raises(ValueError, match="slice_order"):
        settings_from_config({"slice_order": "descending"})


def test_cohort_alternates_and_only_appends():
    small = cohort_participants(settings_from_config({**TINY, "n_per_group": 2}))
    big = cohort_participants(settings_from_config({**TINY, "n_per_group": {"StD": 3, "HC": 5}}))
    assert list(small.columns) == ["participant_id", "group", "age", "sex"]
    assert list(big.participant_id[:3]) == ["sub-001", "sub-002", "sub-003"]
    assert list(big.group) == ["StD", "HC"] * 3 + ["HC", "HC"]
    pd.testing.assert_frame_equal(small, big.iloc[: len(small)])
    assert big.age.between(18, 63).all() and set(big.sex) <= {"M", "F"}


def test_participants_tsv_written(cohort):
    table = pd.read_csv(cohort / "participants.tsv", sep="\t")
    assert table.participant_id.iloc[0] == "sub-001" and len(table) == 6


@pytest.mark.parametrize("which", ["interleaved", "ascending"])
def test_dcm2niix_recovers_geometry_tr_and_slice_timing(which, cohort, ascending, tmp_path):
    if which == "interleaved":
        dicom, truth = cohort / "sourcedata" / "sub-001", cohort / "truth" / "sub-001"
    else:
        dicom, truth = ascending / "dicom", ascending / "truth"
    info = json.loads((truth / "group.json").read_text())
    assert info["slice_order"] == which
    t1, _ = dcm2niix(dicom / "02_t1_mprage_sag_p2_iso", tmp_path / "t1")
    bold, sidecar = dcm2niix(dicom / "03_ep2d_bold_rest", tmp_path / "bold")
    t1_truth = nib.load(truth / "T1w_label-GM_probseg.nii.gz")
    bold_truth = nib.load(truth / "bold_label-GM_probseg.nii.gz")
    assert t1.shape == t1_truth.shape
    assert bold.shape == (*bold_truth.shape, info["dummy_scans"] + info["n_volumes"])
    assert np.abs(t1.affine - t1_truth.affine).max() < 0.01
    assert np.abs(bold.affine - bold_truth.affine).max() < 0.01
    assert sidecar["RepetitionTime"] == pytest.approx(info["RepetitionTime"])
    error = np.abs(np.array(sidecar["SliceTiming"]) - np.array(info["SliceTiming"]))
    assert error.max() < 0.005
    order = np.argsort(info["SliceTiming"])
    if which == "ascending":
        assert list(order) == list(range(len(order)))
    else:
        assert list(order[:3]) == [1, 3, 5] or list(order[:3]) == [0, 2, 4]


def test_dicom_headers_identity_and_validity(tmp_path):
    settings = settings_from_config(TINY)
    planted = {"PatientName": "PLANTED^NAME", "PatientID": "PLANTED-ID-42"}
    simulate_subject("sub-002", CONTROL_GROUP, settings, tmp_path / "d", tmp_path / "t", planted)
    t1 = sorted((tmp_path / "d" / "02_t1_mprage_sag_p2_iso").iterdir())
    bold = sorted((tmp_path / "d" / "03_ep2d_bold_rest").iterdir())
    assert len(bold) == settings.bold_slices * (settings.n_volumes + settings.dummy_scans)
    for path in (t1[0], bold[0], bold[-1]):
        ds = pydicom.dcmread(path)
        assert ds.file_meta.MediaStorageSOPClassUID == pydicom.uid.MRImageStorage
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert str(ds.PatientName) == "PLANTED^NAME" and ds.PatientID == "PLANTED-ID-42"
        assert ds.PatientBirthDate and ds.InstitutionName and ds.Manufacturer == "SIEMENS"
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
    assert pydicom.dcmread(t1[0]).SeriesDescription == "t1_mprage_sag_p2_iso"
    last = pydicom.dcmread(bold[-1])
    assert last.SeriesDescription == "ep2d_bold_rest" and int(last.AcquisitionNumber) == 70
    with pytest.raises(ValueError, match="Nickname"):
        simulate_subject(
            "sub-002", "HC", settings, tmp_path / "x", tmp_path / "y", {"Nickname": "x"}
        )
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_same_seed_bit_identical_and_independent_of_cohort_size(cohort, tmp_path):
    """Re-simulating sub-001 in a larger cohort reproduces every DICOM and truth byte."""
    settings = settings_from_config({**TINY, "n_per_group": 40})
    simulate_subject("sub-001", PATIENT_GROUP, settings, tmp_path / "d", tmp_path / "t")
    assert _folder_bytes(tmp_path / "d") == _folder_bytes(cohort / "sourcedata" / "sub-001")
    again, first = _folder_bytes(tmp_path / "t"), _folder_bytes(cohort / "truth" / "sub-001")
    assert again.keys() == first.keys()
    differing = [name for name in first if again[name] != first[name]]
    assert differing == []


def test_effect_zero_makes_groups_identical(tmp_path):
    settings = settings_from_config({**TINY, "effect_size": 0.0})
    for group in (PATIENT_GROUP, CONTROL_GROUP):
        simulate_subject("sub-003", group, settings, tmp_path / group / "d", tmp_path / group / "t")
    assert _folder_bytes(tmp_path / "StD" / "d") == _folder_bytes(tmp_path / "HC" / "d")
    patient, control = (_folder_bytes(tmp_path / g / "t") for g in ("StD", "HC"))
    assert [n for n in patient if patient[n] != control[n]] == ["group.json"]
    # with an effect, the same draws give a patient less grey matter and more coupling
    effect = settings_from_config(TINY)
    sick, well = (build_subject("sub-003", g, effect) for g in (PATIENT_GROUP, CONTROL_GROUP))
    planted = [value for value, name in atlas.aal_labels() if name in PLANTED]
    assert np.all(sick.anatomy.gm_factor[planted] < well.anatomy.gm_factor[planted])
    others = np.setdiff1d(np.arange(117), planted)
    assert np.array_equal(sick.anatomy.gm_factor[others], well.anatomy.gm_factor[others])
    assert sick.signals.coupling > well.signals.coupling


def test_truth_only_path_matches_full_simulation(cohort, tmp_path):
    simulate_truth("sub-001", PATIENT_GROUP, settings_from_config(TINY), tmp_path / "t")
    assert _folder_bytes(tmp_path / "t") == _folder_bytes(cohort / "truth" / "sub-001")


@pytest.mark.slow
def test_demo_cohort_planted_effects_significant(tmp_path):
    """The demo cohort's truth shows the planted GM and connectivity effects (t-test)."""
    from scipy import stats

    settings = settings_from_config({"preset": "demo"})
    names = [name for _, name in atlas.aal_labels()]
    planted = [value for value, name in atlas.aal_labels() if name in PLANTED]
    dmn = np.flatnonzero(members(NETWORKS["default_mode"]))
    striatum = np.flatnonzero(members(VENTRAL_STRIATUM))
    gm, coupling = {PATIENT_GROUP: [], CONTROL_GROUP: []}, {PATIENT_GROUP: [], CONTROL_GROUP: []}
    for pid, group in cohort_participants(settings)[["participant_id", "group"]].itertuples(
        index=False
    ):
        simulate_truth(pid, group, settings, tmp_path / pid)
        probability = np.asarray(nib.load(tmp_path / pid / "T1w_label-GM_probseg.nii.gz").dataobj)
        labels = np.asarray(nib.load(tmp_path / pid / "T1w_atlas-AAL116_dseg.nii.gz").dataobj)
        target = probability[np.isin(labels, planted)].mean()
        gm[group].append(target / probability[labels > 0].mean())
        r = pd.read_csv(tmp_path / pid / "connectivity.tsv", sep="\t")
        assert list(r.columns) == names
        coupling[group].append(np.arctanh(r.to_numpy()[np.ix_(dmn, striatum)]).mean())
        shutil.rmtree(tmp_path / pid)
    gm_test = stats.ttest_ind(gm[PATIENT_GROUP], gm[CONTROL_GROUP])
    fc_test = stats.ttest_ind(coupling[PATIENT_GROUP], coupling[CONTROL_GROUP])
    print(
        f"GM t={gm_test.statistic:.2f} p={gm_test.pvalue:.2g}; "
        f"FC t={fc_test.statistic:.2f} p={fc_test.pvalue:.2g}"
    )
    assert gm_test.statistic < 0 and gm_test.pvalue < 0.01
    assert fc_test.statistic > 0 and fc_test.pvalue < 0.01


def test_images_look_like_mri(cohort, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dicom, truth = cohort / "sourcedata" / "sub-001", cohort / "truth" / "sub-001"
    t1, _ = dcm2niix(dicom / "02_t1_mprage_sag_p2_iso", tmp_path / "t1")
    bold, _ = dcm2niix(dicom / "03_ep2d_bold_rest", tmp_path / "bold")
    t1_data = np.asarray(t1.dataobj, dtype=np.float32)
    tissue = {
        name: np.asarray(nib.load(truth / f"T1w_label-{name}_probseg.nii.gz").dataobj) > 0.9
        for name in ("GM", "WM", "CSF")
    }
    means = {name: t1_data[mask].mean() for name, mask in tissue.items()}
    assert means["WM"] > 1.2 * means["GM"] > 1.2 * 1.2 * means["CSF"]
    info = json.loads((truth / "group.json").read_text())
    volumes = np.asarray(bold.dataobj, dtype=np.float32)
    brain = np.asarray(nib.load(truth / "bold_desc-brain_mask.nii.gz").dataobj) > 0
    epi = volumes[..., info["dummy_scans"]]
    background = epi[:, :, -1][:5, :5].mean() + epi[:, :, 0][:5, :5].mean()
    assert epi[brain].mean() > 10 * background
    assert volumes[..., 0][brain].mean() > 1.3 * epi[brain].mean()  # dummy scans brighter
    figure, axes = plt.subplots(1, 4, figsize=(16, 4))
    for axis, image in zip(
        axes,
        (
            t1_data[t1_data.shape[0] // 2],
            t1_data[:, :, t1_data.shape[2] // 2],
            epi[:, :, epi.shape[2] // 2],
            epi[epi.shape[0] // 2],
        ),
        strict=True,
    ):
        axis.imshow(image.T, origin="lower", cmap="gray")
        axis.set_axis_off()
    figure.savefig(tmp_path / "simulated_mid_slices.png", dpi=60)
    assert (tmp_path / "simulated_mid_slices.png").stat().st_size > 10_000


def test_ants_transforms_carry_aal_to_native_labels(cohort, tmp_path):
    ants = pytest.importorskip("ants")
    truth = cohort / "truth" / "sub-001"
    readme = json.loads((truth / "README.json").read_text())
    assert (
        "whichtoinvert=[False, False]"
        in readme["ants_usage"]["MNI image -> native T1 (e.g. the AAL atlas)"]
    )
    nib.save(atlas.aal_image(), tmp_path / "aal.nii.gz")
    aal = ants.image_read(str(tmp_path / "aal.nii.gz"))
    native = ants.image_read(str(truth / "T1w_atlas-AAL116_dseg.nii.gz"))
    carried = ants.apply_transforms(
        fixed=native,
        moving=aal,
        transformlist=[str(truth / "T1w_to-MNI_affine.mat"), str(truth / "T1w_to-MNI_warp.nii.gz")],
        whichtoinvert=[False, False],
        interpolator="nearestNeighbor",
    ).numpy()
    back = ants.apply_transforms(
        fixed=aal,
        moving=native,
        transformlist=[str(truth / "MNI_to-T1w_warp.nii.gz"), str(truth / "T1w_to-MNI_affine.mat")],
        whichtoinvert=[False, True],
        interpolator="nearestNeighbor",
    ).numpy()

    def dice(a, b):
        values = [v for v in range(1, 117) if (b == v).sum() > 50]
        return np.mean(
            [2 * ((a == v) & (b == v)).sum() / ((a == v).sum() + (b == v).sum()) for v in values]
        )

    assert dice(carried, native.numpy()) > 0.95
    assert dice(back, aal.numpy()) > 0.8  # two nearest-neighbour resamplings at 2 mm


def test_function_truth_consistent(cohort):
    truth = cohort / "truth" / "sub-001"
    info = json.loads((truth / "group.json").read_text())
    series = pd.read_csv(truth / "timeseries.tsv", sep="\t")
    r = pd.read_csv(truth / "connectivity.tsv", sep="\t").to_numpy()
    model = pd.read_csv(truth / "connectivity_model.tsv", sep="\t").to_numpy()
    assert series.shape == (info["n_volumes"], 116)
    np.testing.assert_allclose(r, np.corrcoef(series.to_numpy(), rowvar=False), atol=2e-6)
    upper = np.triu_indices(116, 1)
    assert np.corrcoef(r[upper], model[upper])[0, 1] > 0.6
    motion = pd.read_csv(truth / "motion.tsv", sep="\t")
    assert list(motion.columns) == [
        "dummy",
        "trans_x",
        "trans_y",
        "trans_z",
        "rot_x",
        "rot_y",
        "rot_z",
    ]
    assert len(motion) == info["dummy_scans"] + info["n_volumes"]
    assert motion.dummy.sum() == info["dummy_scans"]
    assert np.all(motion.iloc[info["dummy_scans"], 1:] == 0)
    assert 0.05 < motion.trans_x.std() < 2.0


def test_motion_in_images_matches_truth(cohort, tmp_path):
    """Undoing the true motion of the largest-motion volume aligns it with the reference."""
    from scipy import ndimage as ndi

    from neurofusion.simulate.motion import Motion

    truth = cohort / "truth" / "sub-001"
    bold, _ = dcm2niix(cohort / "sourcedata" / "sub-001" / "03_ep2d_bold_rest", tmp_path)
    data = np.asarray(bold.dataobj, dtype=np.float32)
    table = pd.read_csv(truth / "motion.tsv", sep="\t")
    reference = int(table.dummy.sum())
    parameters = table.iloc[:, 1:].to_numpy()
    moved = int(np.argmax(np.abs(parameters[reference:]).sum(axis=1))) + reference
    pose = Motion(parameters, reference).matrices()[moved]
    # voxel of the reference volume -> world -> head at volume `moved` -> voxel
    matrix = np.linalg.inv(bold.affine) @ pose @ bold.affine
    realigned = ndi.affine_transform(data[..., moved], matrix, order=1)
    brain = np.asarray(nib.load(truth / "bold_desc-brain_mask.nii.gz").dataobj) > 0
    before = np.abs(data[..., moved] - data[..., reference])[brain].mean()
    after = np.abs(realigned - data[..., reference])[brain].mean()
    assert after < 0.8 * before
