"""Targets `evaluation` and `retrieval` through Snakemake, from time series on disk.

A functional-only cohort of time series (``input.kind: derivatives``) keeps the run to a
couple of minutes: the rules of the models stage (cohort, splits, one job per model and
fold, permutation jobs, evaluation, final models, retrieval library) run for real, with
few epochs and permutations. The patients' time series share a signal across the first
regions, so their connectivity differs from the controls'.
"""

from __future__ import annotations

import re
import sqlite3

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, run_snakemake

from neurofusion.atlas import aal_labels
from neurofusion.evaluation.stats import permutation_p
from neurofusion.training.settings import TrainSettings

pytestmark = pytest.mark.workflow

N_PER_GROUP = 6
FOLDS = 3
MODELS = {
    "enabled": ["cnn3d", "brainnetcnn", "svm_connectivity", "logreg_tangent"],
    "folds": FOLDS,
    "epochs": 2,
    "patience": 2,
    "batch_size": 4,
    "permutations": {"linear": 2, "deep": 1},
    "permutations_per_job": {"linear": 1, "deep": 1},
    "bootstrap": 100,
    "threads": 1,
}


def _config(root) -> dict:
    return {
        "input": {"kind": "derivatives", "path": str(root), "modalities": ["bold"]},
        "models": MODELS,
        "retrieval": {"k": 3},
    }


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """The workflow folder after ``snakemake evaluation retrieval``."""
    root = tmp_path_factory.mktemp("models_workflow")
    source = root / "derivatives_in"
    rng = np.random.default_rng(5)
    ids = [f"sub-{i:02d}" for i in range(1, 2 * N_PER_GROUP + 1)]
    groups = ["StD", "HC"] * N_PER_GROUP
    source.mkdir()
    pd.DataFrame({"participant_id": ids, "group": groups}).to_csv(
        source / "participants.tsv", sep="\t", index=False
    )
    names = [name for _, name in aal_labels()]
    for subject, group in zip(ids, groups, strict=True):
        data = rng.standard_normal((80, 116))
        if group == "StD":
            data[:, :10] += rng.standard_normal((80, 1))
        folder = source / subject / "func"
        folder.mkdir(parents=True)
        pd.DataFrame(data, columns=names).to_csv(
            folder / f"{subject}_task-rest_atlas-AAL116_timeseries.tsv", sep="\t", index=False
        )
    work = root / "work"
    run = run_snakemake(work, _config(source), "--cores", "2", "evaluation", "retrieval")
    assert run.returncode == 0, run.stdout[-5000:]
    return work, source


def test_permutation_jobs_pool_into_the_evaluation(evaluated):
    work, _ = evaluated
    results = work / "results"
    table = pd.read_csv(results / "evaluation" / "permutations.tsv", sep="\t")
    assert table["model"].tolist() == ["brainnetcnn", "svm_connectivity", "logreg_tangent"]
    for row in table.itertuples():
        files = sorted((results / "models" / row.model / "permutations").glob("*.tsv"))
        null = pd.concat([pd.read_csv(path, sep="\t") for path in files])
        expected = MODELS["permutations"]["deep" if row.model == "brainnetcnn" else "linear"]
        assert row.permutations == len(null) == len(files) == expected
        assert sorted(null["permutation"]) == list(range(1, expected + 1))
        assert row.p == pytest.approx(
            permutation_p(row.balanced_accuracy, null["balanced_accuracy"]), abs=1e-4
        )
    summary = (results / "evaluation" / "summary.md").read_text()
    assert "`cnn3d`" in summary and "T1w" in summary  # skipped, and why
    # The planted coupling is separable by a linear model on the connectivity.
    metrics = pd.read_csv(results / "evaluation" / "metrics.tsv", sep="\t")
    accuracy = metrics[(metrics.model == "svm_connectivity") & (metrics.metric == "accuracy")]
    assert accuracy["value"].iloc[0] >= 0.75


def test_retrieval_library_holds_every_fold_and_the_final_model(evaluated):
    work, _ = evaluated
    library = work / "results" / "retrieval" / "library.sqlite"
    with sqlite3.connect(library) as db:
        folds = {row[0] for row in db.execute("SELECT DISTINCT fold FROM entries")}
        models = {row[0] for row in db.execute("SELECT DISTINCT model FROM entries")}
    assert models == {"brainnetcnn"}
    assert set(range(FOLDS)) <= folds and len(folds) == FOLDS + 1  # + the final model's
    # Retrieval is scored for the encoder and the raw features of the one modality.
    summary = pd.read_csv(work / "results" / "retrieval" / "summary.tsv", sep="\t")
    assert set(summary["features"]) == {"brainnetcnn", "raw_connectivity"}
    comparisons = pd.read_csv(work / "results" / "retrieval" / "comparisons.tsv", sep="\t")
    assert set(zip(comparisons["features"], comparisons["baseline"], strict=True)) == {
        ("brainnetcnn", "raw_connectivity"),
        ("brainnetcnn", "class_prior"),
    }
    assert (comparisons["low"] <= comparisons["difference"]).all()
    assert (comparisons["difference"] <= comparisons["high"]).all()


def test_more_permutations_plan_only_the_new_jobs(evaluated):
    work, source = evaluated
    config = _config(source)
    config["models"] = {**MODELS, "permutations": {"linear": 3, "deep": 1}}
    run = run_snakemake(work, config, "-n", "evaluation")
    assert run.returncode == 0, run.stdout[-3000:]
    planned = set(re.findall(r"models/(\w+)/permutations/(\d+-\d+)\.tsv", run.stdout))
    new = {("svm_connectivity", "3-3"), ("logreg_tangent", "3-3")}
    assert new <= planned
    assert all(
        (work / "results" / "models" / m / "permutations" / f"{r}.tsv").is_file()
        for m, r in planned - new
    )
    assert not re.search(r"^train_(deep|linear)\s", run.stdout, re.MULTILINE)


def test_a_new_learning_rate_retrains_only_its_model(evaluated):
    """``models.lr`` per model: the linear models (which train no network) and the
    permutation tests of other models are not planned again."""
    work, source = evaluated
    config = _config(source)
    shipped = TrainSettings.from_config(
        yaml.safe_load((REPO / "config.yaml").read_text())["models"]
    )
    rate = shipped.for_model("brainnetcnn").lr
    config["models"] = {**MODELS, "lr": {"default": rate / 7, "brainnetcnn": rate}}
    run = run_snakemake(work, config, "-n", "evaluation")
    assert run.returncode == 0, run.stdout[-3000:]
    assert not re.search(r"^rule train_(deep|linear):", run.stdout, re.MULTILINE)  # no change
    config["models"]["lr"] = {"brainnetcnn": rate * 10}
    run = run_snakemake(work, config, "-n", "evaluation")
    assert run.returncode == 0, run.stdout[-3000:]
    outputs = " ".join(re.findall(r"^\s+output: (.*)$", run.stdout, re.MULTILINE))
    assert set(re.findall(r"models/(\w+)/(?:fold-\d+|final|permutations)/", outputs)) == {
        "brainnetcnn"
    }
    assert "models/brainnetcnn/fold-0/predictions.tsv" in outputs
