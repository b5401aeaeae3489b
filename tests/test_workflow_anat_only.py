"""An anatomy-only study (``input.modalities: [T1w]``) from simulated DICOM to evaluation.

Six tiny simulated subjects: conversion, anatomical preprocessing, anatomical QC, the
group QC without its functional parts, and the three T1 models through the evaluation.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import run_snakemake

from neurofusion.qc.anat_metrics import ANAT_METRICS
from neurofusion.qc.outputs import anat_qc_path, group_qc_outputs

pytestmark = pytest.mark.workflow

CONFIG = {
    "input": {"modalities": ["T1w"]},
    "simulate": {"preset": "tiny", "n_per_group": 3, "seed": 3},
    "models": {
        "enabled": ["cnn3d", "svm_gm", "svm_handcrafted"],
        "folds": 3,
        "epochs": 2,
        "permutations": {"linear": 2, "deep": 1},
        "bootstrap": 100,
        "threads": 1,
    },
}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """The workflow folder after ``snakemake evaluation`` on a T1-only cohort."""
    work = tmp_path_factory.mktemp("anat_only")
    run = run_snakemake(work, CONFIG, "--cores", "2", "evaluation")
    assert run.returncode == 0, run.stdout[-5000:]
    return work / "results"


def test_the_t1_models_are_evaluated(evaluated):
    metrics = pd.read_csv(evaluated / "evaluation" / "metrics.tsv", sep="\t")
    assert set(metrics["model"]) == {"cnn3d", "svm_gm", "svm_handcrafted"}
    accuracy = metrics[metrics["metric"] == "accuracy"]
    assert accuracy["n"].eq(6).all(), accuracy  # every subject scored by every model


def test_group_qc_has_anatomy_and_no_functional_parts(evaluated):
    outputs = group_qc_outputs(evaluated)
    table = pd.read_csv(outputs["table"], sep="\t")
    assert len(table) == 6
    assert table[list(ANAT_METRICS)].notna().all().all(), table
    assert table[["mean_fd_mm", "tsnr_gm_median"]].isna().all().all()
    for key in set(outputs) - set(group_qc_outputs(evaluated, functional=False)):
        assert not outputs[key].exists(), outputs[key]


def test_each_subject_has_its_anatomical_qc(evaluated):
    for subject in ("001", "002", "003", "004", "005", "006"):
        record = json.loads(anat_qc_path(evaluated / "derivatives", subject).read_text())
        assert record["participant_id"] == f"sub-{subject}"
        assert record["cnr"] > 1 and record["brain_volume_l"] > 0.8, record
        assert record["provenance"]["step"] == "anat_qc"
