"""Subjects with only one modality: kept, scored by the models that can use them, reported
apart; the fusion network's presence masking and modality dropout; BIDS input under
``input.missing_modality``."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_snakemake

from neurofusion.errors import NeurofusionError
from neurofusion.evaluation.report import evaluate, evaluation_outputs
from neurofusion.models import CNN3D, BrainNetCNN, FusionNet
from neurofusion.training.cohort import Cohort, assemble_cohort
from neurofusion.training.layout import fold_outputs, split_paths
from neurofusion.training.loop import InputScaler
from neurofusion.training.registry import MODELS
from neurofusion.training.run import create_splits, run_fold
from neurofusion.training.settings import TrainSettings
from neurofusion.training.synthetic import write_synthetic_cohort
from neurofusion.workflow import bids_inputs

#: sub-001 (StD) and sub-004 (HC) were scanned without BOLD, sub-006 (HC) without a T1w.
MISSING = {"sub-001": "bold", "sub-004": "bold", "sub-006": "T1w"}
FOLDS = 2
SETTINGS = TrainSettings(epochs=3, patience=2, batch_size=8, threads=1, inner_folds=2)
MODELS_RUN = ("cnn3d", "brainnetcnn", "fusion", "late_fusion", "svm_connectivity", "svm_gm")


# --------------------------------------------------------------------------- fast units


def test_scaler_leaves_absent_rows_out_and_zero():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 2.0, size=(6, 1, 4, 4)).astype(np.float32)
    x[[1, 4]] = 0.0
    present = x[[0, 2, 3, 5]]
    channel = InputScaler.fit([x], per="channel")
    assert channel.mean[0][0] == pytest.approx(present.mean(), rel=1e-5)
    assert channel.std[0][0] == pytest.approx(present.std(), rel=1e-5)
    feature = InputScaler.fit([x])  # per feature (each element), the default
    np.testing.assert_allclose(feature.mean[0], present.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(feature.std[0], present.std(axis=0), rtol=1e-5)
    for scaler in (channel, feature):
        (z,) = scaler.transform([x])
        assert torch.count_nonzero(z[[1, 4]]) == 0
        assert abs(float(z[[0, 2, 3, 5]].mean())) < 1e-5
    (z,) = feature.transform([x])
    np.testing.assert_allclose(z[[0, 2, 3, 5]].std(dim=0, unbiased=False), 1.0, rtol=1e-4)


def test_cohort_of_an_older_version_is_named(tmp_path):
    (tmp_path / "cohort.tsv").write_text("participant_id\tgroup\tlabel\tindex\nsub-1\tA\t1\t0\n")
    with pytest.raises(NeurofusionError, match="older neurofusion; delete"):
        Cohort(tmp_path)


def _fusion(dropout: float) -> FusionNet:
    torch.manual_seed(0)
    return FusionNet(CNN3D((16, 16, 16)), BrainNetCNN(20), modality_dropout=dropout)


def test_fusion_zeroes_the_features_of_an_absent_modality():
    net = _fusion(0.0).eval()
    t1, fc = torch.randn(3, 1, 16, 16, 16), torch.randn(3, 1, 20, 20)
    t1[1] = 0.0  # subject 1 has no T1
    fc[2] = 0.0  # subject 2 has no connectivity
    features = net.features(t1, fc)
    assert features.shape == (3, 128)
    full = torch.cat([net.cnn.features(t1), net.brainnet.features(fc)], dim=1)
    assert torch.equal(features[0], full[0])
    assert torch.count_nonzero(features[1, :64]) == 0
    assert torch.equal(features[1, 64:], full[1, 64:])
    assert torch.count_nonzero(features[2, 64:]) == 0
    assert torch.equal(features[2, :64], full[2, :64])


def test_modality_dropout_hides_exactly_one_modality_in_training_only():
    net = _fusion(1.0)
    t1, fc = torch.randn(200, 1, 4, 4, 4), torch.randn(200, 1, 20, 20)
    t1[:10] = 0.0
    net.train()
    torch.manual_seed(1)
    present = net.presence(t1, fc)
    assert torch.all(present[10:].sum(dim=1) == 1)  # complete subjects lose one of two
    assert 70 < int(present[10:, 0].sum()) < 120  # T1 kept about half of the time
    assert torch.all(present[:10, 0] == 0) and torch.all(present[:10, 1] == 1)  # never both
    net.eval()
    assert torch.all(net.presence(t1, fc)[10:] == 1)


def _bids(root: Path, t1w: Path, with_bold: dict[str, bool]) -> Path:
    for label, bold in with_bold.items():
        anat = root / f"sub-{label}" / "anat"
        anat.mkdir(parents=True)
        shutil.copy(t1w, anat / f"sub-{label}_T1w.nii.gz")
        if bold:
            func = root / f"sub-{label}" / "func"
            func.mkdir()
            (func / f"sub-{label}_task-rest_bold.nii.gz").symlink_to(t1w)
            (func / f"sub-{label}_task-rest_bold.json").write_text('{"RepetitionTime": 2.0}')
    return root


@pytest.mark.shared
def test_bids_inputs_keep_and_error(shared_data, tmp_path):
    t1w = shared_data / "bids_t1w" / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    root = _bids(tmp_path / "bids", t1w, {"01": True, "05": False})
    found = bids_inputs(root, ["01", "05"], ["T1w", "bold"], "keep")
    assert sorted(found["01"]) == ["T1w", "bold"] and list(found["05"]) == ["T1w"]
    with pytest.raises(NeurofusionError, match=r"sub-05 \(bold\).*missing_modality: keep"):
        bids_inputs(root, ["01", "05"], ["T1w", "bold"], "error")
    (root / "sub-01" / "anat" / "sub-01_T1w.nii.gz").unlink()
    with pytest.raises(NeurofusionError, match=r"sub-01 \(T1w\).*needs the subject's T1w"):
        bids_inputs(root, ["01", "05"], ["T1w", "bold"], "keep")


@pytest.mark.shared
@pytest.mark.workflow
def test_workflow_keeps_t1w_only_subjects(shared_data, tmp_path):
    """Dry run: T1w-only subjects get anat and its QC and enter the cohort, never func or
    connectivity."""
    t1w = shared_data / "bids_t1w" / "sub-01" / "anat" / "sub-01_T1w.nii.gz"
    root = _bids(tmp_path / "bids", t1w, {"01": True, "05": False, "52": True, "60": False})
    shutil.copy(shared_data / "bids_t1w" / "participants.tsv", root / "participants.tsv")
    config = {
        "positive_group": "depr",
        "output_dir": "out",
        "input": {"kind": "bids", "path": str(root), "missing_modality": "keep"},
    }
    run = run_snakemake(tmp_path, config, "-n", "models")
    assert run.returncode == 0, run.stdout[-3000:]
    by_rule: dict[str, set[str]] = {}
    for block in re.split(r"^\[.*\]$", run.stdout, flags=re.M):
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M)
        subject = re.search(r"wildcards: subject=(\w+)", block)
        if rule and subject:
            by_rule.setdefault(rule.group(1), set()).add(subject.group(1))
    assert by_rule["anat"] == by_rule["anat_qc"] == {"01", "05", "52", "60"}
    assert by_rule["func"] == {"01", "52"}
    assert by_rule["connectome"] == {"01", "52"}
    config["input"]["missing_modality"] = "error"
    run = run_snakemake(tmp_path, config, "-n")
    assert run.returncode != 0 and "no image for sub-05 (bold), sub-60 (bold)" in run.stdout


# --------------------------------------------------------------------------- slow: a cohort


@pytest.fixture(scope="module")
def partial_cohort(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("partial")
    write_synthetic_cohort(
        root, n_per_group=16, effect_size=3.0, resolution_mm=6, n_volumes=80, missing=MISSING
    )
    has = {pid: ["T1w"] if absent == "bold" else ["bold"] for pid, absent in MISSING.items()}
    assemble_cohort(
        root / "rawdata" / "participants.tsv",
        root / "qc" / "exclusions.tsv",
        root / "derivatives",
        root / "models" / "cohort",
        "StD",
        ["T1w", "bold"],
        resolution_mm=8,
        subject_modalities=has,
    )
    paths = split_paths(root / "models" / "splits", FOLDS)
    create_splits(root / "models" / "cohort", paths, FOLDS, 1, 0, 0.2)
    for model in MODELS_RUN:
        for k in range(FOLDS):
            branches = {n: root / "models" / n / f"fold-{k}" for n in MODELS[model].branches}
            out = fold_outputs(root / "models", model, k)
            cohort = root / "models" / "cohort"
            run_fold(model, cohort, paths[k], k, out, SETTINGS, branches or None)
    return root


def _predictions(root: Path, model: str) -> pd.DataFrame:
    return pd.concat(
        [pd.read_csv(fold_outputs(root / "models", model, k)["predictions"], sep="\t")
         for k in range(FOLDS)], ignore_index=True,
    )  # fmt: skip


@pytest.mark.slow
def test_cohort_marks_and_zero_fills_absent_modalities(partial_cohort):
    cohort = Cohort(partial_cohort / "models" / "cohort")
    rows = dict(zip(cohort.ids, range(len(cohort.ids)), strict=True))
    assert cohort.modalities == ["T1w", "bold"]
    assert set(cohort.ids[~cohort.has("bold")]) == {"sub-001", "sub-004"}
    assert set(cohort.ids[~cohort.has("T1w")]) == {"sub-006"}
    assert int(cohort.complete.sum()) == 29
    for pid in ("sub-001", "sub-004"):
        assert not np.any(cohort.array("fc")[rows[pid]]) and cohort.timeseries[rows[pid]] is None
        assert np.any(cohort.array("t1")[rows[pid]])
        assert not np.any(cohort.array("maps")[rows[pid]])
    assert not np.any(cohort.array("t1")[rows["sub-006"]])
    assert not np.any(cohort.array("gm")[rows["sub-006"]])
    assert np.any(cohort.array("fc")[rows["sub-006"]])


@pytest.mark.slow
def test_each_model_scores_the_subjects_it_can_use(partial_cohort):
    everyone = {f"sub-{i:03d}" for i in range(1, 33)}
    expected = {
        "cnn3d": everyone - {"sub-006"},
        "svm_gm": everyone - {"sub-006"},
        "brainnetcnn": everyone - {"sub-001", "sub-004"},
        "svm_connectivity": everyone - {"sub-001", "sub-004"},
        "fusion": everyone,
        "late_fusion": everyone,
    }
    for model, subjects in expected.items():
        table = _predictions(partial_cohort, model)
        assert set(table["subject"]) == subjects, model
        assert np.all(np.isfinite(table["probability"])), model
        partial = table[table["complete"] == 0].set_index("subject")["modalities"].to_dict()
        has = {"sub-001": "T1w", "sub-004": "T1w", "sub-006": "bold"}
        assert partial == {s: m for s, m in has.items() if s in subjects}
        for k in range(FOLDS):
            record = json.loads(
                fold_outputs(partial_cohort / "models", model, k)["provenance"].read_text()
            )
            test = set(record["split"]["test"])
            fitted = {pid for ids in record["fitted"].values() for pid in ids}
            assert not fitted & test, (model, k)  # no test subject reaches a fitting step
            assert fitted <= subjects, (model, k)  # nor a subject without the model's input


@pytest.mark.slow
def test_evaluation_reports_partial_subjects_apart(partial_cohort):
    models = ("cnn3d", "brainnetcnn", "fusion", "late_fusion")
    out = evaluation_outputs(partial_cohort / "evaluation")
    metrics = evaluate(
        {m: [fold_outputs(partial_cohort / "models", m, k)["predictions"]
             for k in range(FOLDS)] for m in models},
        {}, {}, ["cnn3d", "brainnetcnn"], {}, out, ("HC", "StD"), n_boot=200,
    )  # fmt: skip
    counts = metrics[metrics.metric == "accuracy"].set_index("model")["n"]
    assert counts.to_dict() == dict.fromkeys(models, 29)  # the complete subjects only
    partial = pd.read_csv(out["missing_modality"], sep="\t")
    n = partial.drop_duplicates(["model", "modalities"]).set_index(["model", "modalities"])["n"]
    assert n.to_dict() == {
        ("brainnetcnn", "bold"): 1,
        ("cnn3d", "T1w"): 2,
        ("fusion", "T1w"): 2,
        ("fusion", "bold"): 1,
        ("late_fusion", "T1w"): 2,
        ("late_fusion", "bold"): 1,
    }
    assert set(partial["metric"]) == {"accuracy", "balanced_accuracy", "auc"}
    assert "## Subjects with a missing modality" in out["summary"].read_text()
