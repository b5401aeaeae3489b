"""Target `connectivity` on the tiny simulated cohort, scored against the simulator's truth."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import TINY_COHORT, run_snakemake

from neurofusion.atlas import aal_labels
from neurofusion.connectivity.accuracy import truth_correlation
from neurofusion.connectivity.outputs import atlas_outputs, connectivity_outputs
from neurofusion.preprocessing.func_outputs import func_outputs
from neurofusion.qc.outputs import group_qc_outputs

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

SUBJECTS = ["001", "002"]
AAL_NAMES = [name for _, name in aal_labels()]


@pytest.fixture(scope="module")
def tiny_connectivity(tiny_preprocessed):
    run = run_snakemake(tiny_preprocessed, TINY_COHORT, "--cores", "2", "connectivity")
    assert run.returncode == 0, run.stdout[-5000:]
    return tiny_preprocessed / "results"


def test_connectivity_outputs_match_the_truth(tiny_connectivity):
    results = tiny_connectivity
    atlas = atlas_outputs(results, 3)
    assert pd.read_csv(atlas["tsv"], sep="\t")["name"].tolist() == AAL_NAMES
    scores = {}
    for subject in SUBJECTS:
        out = connectivity_outputs(results / "derivatives", subject)
        series = pd.read_csv(out["timeseries"], sep="\t")
        assert list(series.columns) == AAL_NAMES
        assert len(series) == 60 and np.isfinite(series.to_numpy()).all()
        pearson = pd.read_csv(out["pearson"], sep="\t", index_col=0)
        fisherz = pd.read_csv(out["fisherz"], sep="\t", index_col=0)
        for matrix in (pearson, fisherz):
            assert list(matrix.index) == AAL_NAMES and list(matrix.columns) == AAL_NAMES
            values = matrix.to_numpy()
            assert np.isfinite(values).all() and np.allclose(values, values.T)
        assert np.all(np.diag(pearson.to_numpy()) == 1)
        assert np.all(np.diag(fisherz.to_numpy()) == 0)
        coverage = json.loads(out["coverage"].read_text())
        assert [entry["region"] for entry in coverage["regions"]] == AAL_NAMES
        truth = results / "simulated" / "truth" / f"sub-{subject}" / "connectivity.tsv"
        scores[subject] = truth_correlation(out["fisherz"], out["coverage"], truth)
        assert out["figure"].stat().st_size > 10_000
    print("r(recovered Fisher z, true Fisher z):", scores)
    assert min(scores.values()) >= 0.7  # 0.81 and 0.83 on this cohort


def test_voxelwise_maps_are_float32_and_in_range(tiny_connectivity):
    func = func_outputs(tiny_connectivity / "derivatives", SUBJECTS[0])
    mask = np.asarray(nib.load(func["brain_mask"]).dataobj) > 0
    for key in ("falff", "reho"):
        img = nib.load(func[key])
        assert img.get_data_dtype() == np.float32 and img.shape == mask.shape
        values = np.asarray(img.dataobj)
        assert np.isfinite(values).all() and np.all(values[~mask] == 0)
        assert 0 < values[mask].mean() < 1 and values.max() <= 1
        assert json.loads(func[f"{key}_json"].read_text())["Description"]


def test_group_qc_lists_every_subject(tiny_connectivity):
    outputs = group_qc_outputs(tiny_connectivity)
    table = pd.read_csv(outputs["table"], sep="\t")
    assert table["participant_id"].tolist() == [f"sub-{s}" for s in SUBJECTS]
    qc = json.loads(func_outputs(tiny_connectivity / "derivatives", "001")["qc"].read_text())
    assert table.loc[0, "mean_fd_mm"] == pytest.approx(qc["fd_mean_mm"], rel=1e-4)
    exclusions = pd.read_csv(outputs["exclusions"], sep="\t")
    assert list(exclusions.columns) == ["participant_id", "reason"]
    assert json.loads(outputs["qcfc_json"].read_text())["n_subjects"] <= 2


def test_entry_from_derivatives_skips_preprocessing(tmp_path):
    """Three participants' time series as .1D, .mat and TSV (fMRIPrep-style folders)."""
    import scipy.io

    root = tmp_path / "derivatives_in"
    rng = np.random.default_rng(0)
    arrays = {}
    root.mkdir()
    participants = pd.DataFrame(
        {"participant_id": ["sub-01", "sub-02", "sub-03"], "group": ["A", "B", "A"]}
    )
    participants.to_csv(root / "participants.tsv", sep="\t", index=False)
    for subject, kind in (("01", "1D"), ("02", "mat"), ("03", "tsv")):
        mixing = np.eye(116) + 0.2 * rng.standard_normal((116, 116))
        data = rng.standard_normal((70, 116)) @ mixing
        folder = root / f"sub-{subject}" / "func"
        folder.mkdir(parents=True)
        path = folder / f"sub-{subject}_task-rest_atlas-AAL116_timeseries.{kind}"
        if kind == "1D":
            np.savetxt(path, data, fmt="%.17g")
        elif kind == "mat":
            scipy.io.savemat(path, {"ROISignals": data})
        else:
            table = pd.DataFrame(data, columns=AAL_NAMES)
            table.to_csv(path, sep="\t", index=False, float_format="%.17g")
        confounds = pd.DataFrame({"framewise_displacement": rng.gamma(2, 0.05, 70)})
        confounds_file = folder / f"sub-{subject}_task-rest_desc-confounds_timeseries.tsv"
        confounds.to_csv(confounds_file, sep="\t", index=False)
        arrays[subject] = data
    config = {
        "positive_group": "A",
        "input": {
            "kind": "derivatives",
            "path": str(root),
            "modalities": ["bold"],
            "derivatives": {"confounds": "sub-{subject}/func/*desc-confounds_timeseries.tsv"},
        },
    }
    run = run_snakemake(tmp_path / "work", config, "--cores", "2")
    assert run.returncode == 0, run.stdout[-5000:]
    assert "rule func" not in run.stdout and "rule atlas" not in run.stdout
    deriv = tmp_path / "work" / "results" / "derivatives"
    for subject, data in arrays.items():
        out = connectivity_outputs(deriv, subject)
        pearson = pd.read_csv(out["pearson"], sep="\t", index_col=0)
        assert list(pearson.columns) == AAL_NAMES
        assert np.allclose(pearson.to_numpy(), np.corrcoef(data, rowvar=False), atol=1e-7)
    table = pd.read_csv(group_qc_outputs(tmp_path / "work" / "results")["table"], sep="\t")
    assert table["group"].tolist() == ["A", "B", "A"] and table["mean_fd_mm"].notna().all()
