"""Connectivity and group QC on small arrays, against numpy and scipy."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import scipy.io
from scipy import stats

from neurofusion.atlas import aal_labels
from neurofusion.connectivity.atlas import region_centroids, resample_atlas
from neurofusion.connectivity.connectome import run_connectome_from_timeseries
from neurofusion.connectivity.coverage import flag_regions
from neurofusion.connectivity.derivatives import expected_region_count, find_derivatives
from neurofusion.connectivity.matrices import R_MAX, fisher_z, load_relmats, pearson, read_relmat
from neurofusion.connectivity.outputs import atlas_label, connectivity_outputs
from neurofusion.connectivity.settings import ConnectivitySettings
from neurofusion.connectivity.timeseries import region_signals
from neurofusion.errors import InputError, NeurofusionError
from neurofusion.qc.group import run_group_qc
from neurofusion.qc.motion import exclusion_reasons
from neurofusion.qc.qcfc import edge_correlations, qcfc_summary
from neurofusion.qc.settings import QCSettings

AAL_NAMES = [name for _, name in aal_labels()]


def _series(n_time=120, n_regions=116, seed=0):
    rng = np.random.default_rng(seed)
    mixing = rng.standard_normal((n_regions, n_regions)) * 0.3 + np.eye(n_regions)
    return rng.standard_normal((n_time, n_regions)) @ mixing


def test_pearson_and_fisher_z_match_numpy():
    data = _series()
    r = pearson(data)
    assert np.allclose(r, np.corrcoef(data, rowvar=False), atol=1e-12)
    assert np.array_equal(r, r.T)
    assert np.all(np.diag(r) == 1)
    z = fisher_z(r)
    off = ~np.eye(116, dtype=bool)
    assert np.allclose(z[off], np.arctanh(np.corrcoef(data, rowvar=False)[off]))
    assert np.all(np.diag(z) == 0) and np.array_equal(z, z.T)


def test_flagged_and_constant_regions_give_zero_edges_never_nan():
    data = _series(n_regions=5)
    data[:, 1] = 3.0  # constant
    data[:, 4] = data[:, 3]  # identical: r = 1 before clipping
    r = pearson(data, flagged=np.array([False, False, True, False, False]))
    assert np.isfinite(r).all() and np.all(np.diag(r) == 1)
    assert np.all(r[1, [0, 2, 3, 4]] == 0) and np.all(r[2, [0, 1, 3, 4]] == 0)
    z = fisher_z(r)
    assert np.isfinite(z).all()
    assert z[3, 4] == pytest.approx(np.arctanh(R_MAX))


def test_region_signals_means_and_coverage():
    labels = np.zeros((4, 4, 4), int)
    labels[0, :2] = 1  # 8 voxels
    labels[1] = 2  # 16 voxels
    labels[2, 0, 0] = 7  # 1 voxel, outside the mask
    mask = np.ones((4, 4, 4), bool)
    mask[1, 2:] = False  # half of region 2 outside the mask
    mask[2, 0, 0] = False
    rng = np.random.default_rng(1)
    bold = rng.standard_normal((4, 4, 4, 30)).astype(np.float32)
    bold[0, 0, :2] = 0.0  # two voxels of region 1 without signal
    out = region_signals(bold, mask, labels, [1, 2, 5, 7])
    assert out.n_voxels.tolist() == [8, 16, 0, 1]
    assert out.fraction_in_mask.tolist() == [1.0, 0.5, 0.0, 0.0]
    assert out.fraction_with_signal.tolist() == [0.75, 0.5, 0.0, 0.0]
    keep1 = (labels == 1) & mask & (bold.std(axis=-1) > 0)
    assert np.allclose(out.series[:, 0], bold[keep1].mean(axis=0), atol=1e-6)
    assert np.allclose(out.series[:, 1], bold[(labels == 2) & mask].mean(axis=0), atol=1e-6)
    assert np.all(out.series[:, 2:] == 0)
    flagged = flag_regions(["a", "b", "c", "d"], out.series, out.fraction_with_signal, 0.6)
    assert list(flagged) == ["b", "c", "d"]


def test_atlas_resampling_is_nearest_neighbour_and_centroids_are_in_mm():
    labels = np.zeros((10, 10, 10), np.int16)
    labels[2:4, 2:4, 2:4] = 3
    labels[6:8, 6:8, 6:8] = 9
    atlas = nib.Nifti1Image(labels, np.diag([1.0, 1.0, 1.0, 1.0]))
    target = nib.Nifti1Image(np.zeros((5, 5, 5), np.float32), np.diag([2.0, 2.0, 2.0, 1.0]))
    out = resample_atlas(atlas, target)
    assert out.shape == (5, 5, 5) and set(np.unique(out.get_fdata())) == {0, 3, 9}
    centroids = region_centroids(atlas, [9, 3])
    assert np.allclose(centroids, [[6.5, 6.5, 6.5], [2.5, 2.5, 2.5]])


def test_names_and_atlas_label():
    assert atlas_label("AAL116") == "AAL116"
    assert atlas_label("/x/Schaefer2018_100.nii.gz") == "Schaefer2018100"
    out = connectivity_outputs("d", "01")
    assert out["fisherz"].name == "sub-01_task-rest_atlas-AAL116_stat-fisherz_relmat.tsv"
    assert (
        out["figure"].as_posix()
        == "d/sub-01/figures/sub-01_task-rest_atlas-AAL116_desc-relmat_bold.png"
    )


def _write_formats(folder, data, subject="01"):
    """The same array as TSV (header), CSV (no header), AFNI .1D and DPARSF .mat."""
    paths = {}
    for kind in ("tsv", "csv", "1D", "mat"):
        path = folder / kind / f"sub-{subject}_timeseries.{kind}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "tsv":
            pd.DataFrame(data, columns=AAL_NAMES[: data.shape[1]]).to_csv(
                path, sep="\t", index=False, float_format="%.17g"
            )
        elif kind == "csv":
            np.savetxt(path, data, delimiter=",", fmt="%.17g")
        elif kind == "1D":
            np.savetxt(path, data, fmt="%.17g", header="3dROIstats output")
        else:
            scipy.io.savemat(path, {"ROISignals": data})
        paths[kind] = path
    return paths


def test_readers_give_the_matrices_numpy_gives(tmp_path):
    data = _series(n_time=80)
    expected = np.corrcoef(data, rowvar=False)
    settings = ConnectivitySettings()
    for kind, path in _write_formats(tmp_path, data).items():
        out = run_connectome_from_timeseries("01", path, tmp_path / kind / "deriv", settings)
        pearson_table = read_relmat(out["pearson"])
        assert list(pearson_table.columns) == AAL_NAMES, kind
        assert list(pearson_table.index) == AAL_NAMES, kind
        assert np.allclose(pearson_table.to_numpy(), expected, atol=1e-7), kind
        z = read_relmat(out["fisherz"]).to_numpy()
        off = ~np.eye(116, dtype=bool)
        assert np.allclose(z[off], np.arctanh(expected[off]), atol=1e-6), kind
        series = pd.read_csv(out["timeseries"], sep="\t")
        assert np.allclose(series.to_numpy(), data, rtol=1e-7), kind
        assert json.loads(out["coverage"].read_text())["n_flagged"] == 0
    relative = out["fisherz"].relative_to(tmp_path / "mat" / "deriv")
    paths = [tmp_path / kind / "deriv" / relative for kind in ("tsv", "mat")]
    stacked, names = load_relmats(paths, keep=AAL_NAMES[:3])
    assert stacked.shape == (2, 3, 3) and names == AAL_NAMES[:3]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d[:40], "40 time points (rows), fewer than the 50 required"),
        (lambda d: np.where(np.arange(d.size).reshape(d.shape) == 7, np.nan, d), "NaN"),
        (lambda d: d[:, :90], "90 regions, while the other participants' files have 116"),
    ],
)
def test_bad_derivative_time_series_name_subject_file_and_fix(tmp_path, change, message):
    path = tmp_path / "sub-07_timeseries.1D"
    np.savetxt(path, change(_series(n_time=80)))
    with pytest.raises(InputError) as err:
        run_connectome_from_timeseries(
            "07", path, tmp_path / "d", ConnectivitySettings(), expected_regions=116
        )
    text = str(err.value)
    assert text.startswith("sub-07: ") and message in text and str(path) in text
    assert "Fix: " in text


def test_constant_and_empty_columns_follow_the_coverage_policy(tmp_path):
    data = _series(n_time=80, n_regions=6)
    data[:, 2] = 1.5
    table = pd.DataFrame(data, columns=[f"r{i}" for i in range(6)]).astype(object)
    table["r4"] = "n/a"  # xcp_d: a region below its coverage threshold
    path = tmp_path / "ts.tsv"
    table.to_csv(path, sep="\t", index=False)
    out = run_connectome_from_timeseries("01", path, tmp_path / "d", ConnectivitySettings())
    coverage = json.loads(out["coverage"].read_text())
    assert coverage["flagged"] == [
        {"region": "r2", "reason": "constant signal"},
        {"region": "r4", "reason": "constant signal"},
    ]
    assert [entry["region"] for entry in coverage["regions"]] == [f"r{i}" for i in range(6)]
    r = read_relmat(out["pearson"])
    assert list(r.columns) == [f"r{i}" for i in range(6)]
    assert (r.loc["r2"].drop("r2") == 0).all() and r.loc["r4", "r4"] == 1
    with pytest.raises(InputError, match="2 region\\(s\\) are poorly covered or constant"):
        run_connectome_from_timeseries(
            "01", path, tmp_path / "e", ConnectivitySettings(low_coverage="error")
        )


def test_find_derivatives_one_file_per_subject(tmp_path):
    for subject in ("01", "02"):
        func = tmp_path / f"sub-{subject}" / "func"
        func.mkdir(parents=True)
        ts = func / f"sub-{subject}_atlas-AAL116_timeseries.tsv"
        np.savetxt(ts, _series(60, 116), delimiter="\t")
        (func / f"sub-{subject}_atlas-AAL116_timeseries.json").write_text("{}")
        (func / f"sub-{subject}_desc-confounds_timeseries.tsv").write_text("x\n")
    patterns = {"timeseries": "sub-{subject}/**/*timeseries*", "t1w_mni": None, "confounds": None}
    found = find_derivatives(tmp_path, ["01", "02"], patterns, ["bold"])
    assert found["02"]["timeseries"].name == "sub-02_atlas-AAL116_timeseries.tsv"
    assert expected_region_count(found) == 116
    with pytest.raises(NeurofusionError, match="sub-03: no timeseries file matches"):
        find_derivatives(tmp_path, ["01", "03"], patterns, ["bold"])
    with pytest.raises(NeurofusionError, match=r"input\.derivatives\.t1w_mni is required"):
        find_derivatives(tmp_path, ["01"], patterns, ["T1w", "bold"])


def test_qcfc_matches_scipy_and_detects_motion_dependence():
    rng = np.random.default_rng(4)
    n_subjects, n_edges = 30, 200
    motion = rng.gamma(2.0, 0.1, n_subjects)
    fc = rng.standard_normal((n_subjects, n_edges))
    fc[:, :50] += 10 * motion[:, None]  # the first 50 edges follow motion
    r, p = edge_correlations(fc, motion)
    for edge in (0, 120):
        ref = stats.pearsonr(fc[:, edge], motion)
        assert r[edge] == pytest.approx(ref[0]) and p[edge] == pytest.approx(ref[1])
    distance = np.r_[np.full(50, 20.0), np.full(150, 80.0)] + rng.uniform(0, 5, n_edges)
    summary = qcfc_summary(r, p, distance)
    assert summary["percent_edges_p_lt_0.05"] >= 25
    assert summary["distance_dependence_r"] < -0.5
    assert np.isnan(edge_correlations(fc[:2], motion[:2])[0]).all()


def test_exclusion_rules():
    settings = QCSettings()
    assert exclusion_reasons({"mean_fd_mm": 0.3, "fraction_high_fd": 0.1}, settings) == []
    reasons = exclusion_reasons({"mean_fd_mm": 0.62, "fraction_high_fd": 0.25}, settings)
    assert reasons == [
        "mean FD 0.620 mm > 0.5 mm",
        "25.0 % of volumes with FD > 0.5 mm (limit 20 %)",
    ]
    assert exclusion_reasons({"mean_fd_mm": np.nan, "fraction_high_fd": np.nan}, settings) == []


def test_group_qc_table_exclusions_and_qcfc(tmp_path):
    rng = np.random.default_rng(5)
    subjects, groups = {}, {}
    for index in range(4):
        label = f"{index:02d}"
        data = _series(n_time=60, seed=index)
        path = tmp_path / f"{label}.1D"
        np.savetxt(path, data)
        out = run_connectome_from_timeseries(label, path, tmp_path / "d", ConnectivitySettings())
        fd = rng.gamma(2.0, 0.05 if index else 0.4, 60)  # subject 00 moves a lot
        fd[0] = np.nan
        confounds = tmp_path / f"{label}_confounds.tsv"
        table = pd.DataFrame({"framewise_displacement": fd, "x": 0})
        table.to_csv(confounds, sep="\t", index=False, na_rep="n/a")
        subjects[label] = {
            "fisherz": out["fisherz"],
            "coverage": out["coverage"],
            "confounds": confounds,
        }
        groups[label] = "StD" if index % 2 else "HC"
    outputs = run_group_qc(subjects, groups, tmp_path / "res", QCSettings(), ConnectivitySettings())
    table = pd.read_csv(outputs["table"], sep="\t")
    assert table["participant_id"].tolist() == [f"sub-{i:02d}" for i in range(4)]
    fd0 = pd.read_csv(subjects["00"]["confounds"], sep="\t")["framewise_displacement"]
    assert table.loc[0, "mean_fd_mm"] == pytest.approx(fd0[1:].mean(), rel=1e-5)
    exclusions = pd.read_csv(outputs["exclusions"], sep="\t")
    assert exclusions["participant_id"].tolist() == ["sub-00"]
    assert list(exclusions.columns) == ["participant_id", "reason"]
    qcfc = json.loads(outputs["qcfc_json"].read_text())
    assert qcfc["n_subjects"] == 3 and qcfc["n_edges"] == 116 * 115 // 2
    assert 0 <= qcfc["median_abs_r"] <= 1 and qcfc["distance_dependence_r"] is not None
    edges = pd.read_csv(outputs["qcfc"], sep="\t")
    assert edges["distance_mm"].between(0, 200).all()
    assert pd.read_csv(outputs["regions"], sep="\t")["dropped"].sum() == 0


def test_a_custom_atlas_is_resampled_to_the_bold_grid(tmp_path):
    from neurofusion.connectivity.atlas import write_atlas
    from neurofusion.connectivity.outputs import atlas_outputs
    from neurofusion.templates import mni_t1

    affine = np.array([[2.0, 0, 0, -90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    labels = np.zeros((91, 109, 91), np.int16)
    labels[20:40, 40:60, 30:50] = 10  # a 40 mm cube left of the midline
    labels[50:70, 40:60, 30:50] = 20
    atlas = tmp_path / "My_atlas-2.nii.gz"
    nib.save(nib.Nifti1Image(labels, affine), atlas)
    pd.DataFrame({"index": [10, 20], "name": ["left", "right"]}).to_csv(
        tmp_path / "labels.tsv", sep="\t", index=False
    )
    settings = ConnectivitySettings(atlas=str(atlas), atlas_labels=str(tmp_path / "labels.tsv"))
    outputs = atlas_outputs(tmp_path / "out", 3, str(atlas))
    assert outputs["dseg"].name == "space-MNI152NLin2009aSym_res-3_atlas-Myatlas2_dseg.nii.gz"
    write_atlas(settings, 3, outputs)
    grid = mni_t1(3)
    out = nib.load(outputs["dseg"])
    assert out.shape == grid.shape and np.allclose(out.affine, grid.affine)
    data = np.asarray(out.dataobj)
    # 20 x 20 x 20 voxels of 2 mm: (40 / 3)^3 = 2370 voxels of 3 mm, give or take a slab
    assert 1900 < (data == 10).sum() < 2900 and set(np.unique(data)) == {0, 10, 20}
    assert pd.read_csv(outputs["tsv"], sep="\t")["name"].tolist() == ["left", "right"]
