"""The models stage end to end on synthetic cohorts built from the simulator's ingredients:
leak-free fitting, determinism, a planted effect found, no effect found where none is.

The cohorts are written under the derivative names the stage reads
(:mod:`neurofusion.training.synthetic`), assembled, split and trained through the same
library functions the Snakemake jobs call.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from neurofusion.connectivity.outputs import connectivity_outputs
from neurofusion.errors import InputError, NeurofusionError
from neurofusion.evaluation.metrics import wilson_interval
from neurofusion.evaluation.report import evaluate, evaluation_outputs
from neurofusion.evaluation.stats import permutation_p
from neurofusion.preprocessing.anat_outputs import anat_outputs
from neurofusion.retrieval.embed import ENCODERS, embed
from neurofusion.retrieval.library import FINAL_FOLD, read_entries
from neurofusion.retrieval.new_subject import embed_new_subject, search_new_subject
from neurofusion.retrieval.stage import retrieval_outputs, run_retrieval
from neurofusion.training.cohort import Cohort, assemble_cohort
from neurofusion.training.layout import FINAL, fold_outputs, permutation_file, split_paths
from neurofusion.training.permutations import (
    permutation_chunks,
    permutation_scores,
    permuted_labels,
    run_permutations,
)
from neurofusion.training.registry import MODELS
from neurofusion.training.run import (
    create_final_split,
    create_splits,
    cross_validated_scores,
    run_fold,
)
from neurofusion.training.settings import TrainSettings
from neurofusion.training.synthetic import write_synthetic_cohort

pytestmark = pytest.mark.slow

FOLDS = 3
SETTINGS = TrainSettings(
    epochs=10,
    batch_size=8,
    threads=1,
    inner_folds=3,
    fusion_init="branches",
)


def _cohort(root: Path, effect: float) -> Path:
    write_synthetic_cohort(
        root, n_per_group=30, effect_size=effect, resolution_mm=6, n_volumes=100, seed=3
    )
    exclusions = root / "qc" / "exclusions.tsv"
    exclusions.write_text("participant_id\treason\nsub-060\tmean FD 0.8 mm > 0.5 mm\n")
    assemble_cohort(
        root / "rawdata" / "participants.tsv",
        exclusions,
        root / "derivatives",
        root / "models" / "cohort",
        "StD",
        ["T1w", "bold"],
        resolution_mm=8,
    )
    create_splits(
        root / "models" / "cohort", split_paths(root / "models" / "splits", FOLDS), FOLDS, 1, 0, 0.2
    )
    return root


@pytest.fixture(scope="module")
def effect_cohort(tmp_path_factory) -> Path:
    return _cohort(tmp_path_factory.mktemp("effect"), 3.0)


@pytest.fixture(scope="module")
def null_cohort(tmp_path_factory) -> Path:
    return _cohort(tmp_path_factory.mktemp("null"), 0.0)


def cross_validate(root: Path, model: str, settings=SETTINGS, folds=range(FOLDS), tag="models"):
    """Train ``model`` on every split; its pooled out-of-fold predictions."""
    predictions = []
    for k in folds:
        out = fold_outputs(root / tag, model, k)
        reuse = model == "late_fusion" or settings.fusion_init == "branches"
        branches = {n: root / tag / n / f"fold-{k}" for n in MODELS[model].branches if reuse}
        predictions.append(
            run_fold(
                model,
                root / "models" / "cohort",
                root / "models" / "splits" / f"fold-{k}.tsv",
                k,
                out,
                settings,
                branches or None,
            )
        )
    return pd.concat(predictions, ignore_index=True)


def accuracy_interval(predictions: pd.DataFrame) -> tuple[float, float, float]:
    right = int((predictions["label"] == predictions["prediction"]).sum())
    return (right / len(predictions), *wilson_interval(right, len(predictions)))


def test_cohort_applies_exclusions(effect_cohort):
    cohort = Cohort(effect_cohort / "models" / "cohort")
    assert len(cohort.ids) == 59 and "sub-060" not in set(cohort.ids)
    excluded = pd.read_csv(effect_cohort / "models" / "cohort" / "excluded.tsv", sep="\t")
    assert excluded["participant_id"].tolist() == ["sub-060"]
    grid = cohort.array("t1").shape[1:]
    assert len(grid) == 3 and min(grid) >= 16
    assert cohort.array("gm").shape == (59, *grid)
    assert cohort.array("maps").shape == (59, 2, *grid)
    assert cohort.array("fc").shape == (59, 116, 116)


def test_more_folds_than_qc_left_in_a_group_stops_with_the_fix(effect_cohort, tmp_path):
    # The workflow fixes K from participants.tsv (30 per group); QC left 29 in one group.
    paths = split_paths(tmp_path / "splits", 30)
    with pytest.raises(NeurofusionError, match=r"excluded\.tsv .* has 29 subjects.*folds to 29"):
        create_splits(effect_cohort / "models" / "cohort", paths, 30, 1, 0, 0.2)
    assert not any(path.exists() for path in paths)


def test_no_test_subject_reaches_any_fitting_step(effect_cohort):
    quick = TrainSettings(
        epochs=2, patience=2, batch_size=8, threads=1, inner_folds=2, fusion_init="branches"
    )
    split = pd.read_csv(effect_cohort / "models" / "splits" / "fold-0.tsv", sep="\t")
    test = set(split.loc[split.role == "test", "participant_id"])
    train = set(split.loc[split.role == "train", "participant_id"])
    validation = set(split.loc[split.role == "validation", "participant_id"])
    order = ["cnn3d", "brainnetcnn", *(m for m in MODELS if m not in ("cnn3d", "brainnetcnn"))]
    for model in order:
        cross_validate(effect_cohort, model, quick, folds=[0], tag="leak")
        record = json.loads(
            fold_outputs(effect_cohort / "leak", model, 0)["provenance"].read_text()
        )
        assert record["fitted"], model
        for step, ids in record["fitted"].items():
            assert not set(ids) & test, f"{model}: {step} saw test subjects"
            assert set(ids) <= train | validation, f"{model}: {step}"
        if MODELS[model].deep:  # stopping: fixed trains on the whole training fold
            assert set(record["fitted"]["network"]) == train | validation
            assert "early_stopping" not in record["fitted"]
            assert record["training"]["kept_epoch"] == quick.epochs
        else:
            final = "cnn3d/network" if model == "late_fusion" else "classifier"
            assert set(record["fitted"][final]) == train | validation
        assert set(record["split"]["test"]) == test
    fusion = json.loads(fold_outputs(effect_cohort / "leak", "fusion", 0)["provenance"].read_text())
    assert "cnn3d/network" in fusion["fitted"]  # started from the fold's own branches
    # late_fusion: stacking fits its stacker on the training fold's inner-CV logits.
    stacking = dataclasses.replace(quick, late_fusion="stacking")
    cross_validate(effect_cohort, "late_fusion", stacking, folds=[0], tag="leak")
    record = json.loads(
        fold_outputs(effect_cohort / "leak", "late_fusion", 0)["provenance"].read_text()
    )
    assert set(record["fitted"]["stacker"]) == train | validation
    assert all(not set(ids) & test for ids in record["fitted"].values())
    # stopping: validation trains on the train subjects and stops on the validation ones.
    early = dataclasses.replace(quick, stopping="validation")
    cross_validate(effect_cohort, "brainnetcnn", early, folds=[0], tag="leak-early")
    record = json.loads(
        fold_outputs(effect_cohort / "leak-early", "brainnetcnn", 0)["provenance"].read_text()
    )
    assert set(record["fitted"]["network"]) == set(record["fitted"]["tangent_reference"]) == train
    assert set(record["fitted"]["early_stopping"]) == validation
    assert "lowest validation loss" in record["training"]["kept_because"]


def test_training_is_deterministic(effect_cohort):
    quick = TrainSettings(epochs=3, patience=3, batch_size=8, threads=1)
    first = cross_validate(effect_cohort, "brainnetcnn", quick, folds=[1], tag="det-a")
    second = cross_validate(effect_cohort, "brainnetcnn", quick, folds=[1], tag="det-b")
    pd.testing.assert_frame_equal(first, second)


def test_per_model_learning_rate_reaches_the_model(effect_cohort):
    """``models.lr`` as a mapping: BrainNetCNN trains exactly as with that one rate."""
    quick = {"epochs": 3, "patience": 3, "batch_size": 8, "threads": 1}
    mapped = TrainSettings.from_config({**quick, "lr": {"default": 1e-5, "brainnetcnn": 1e-3}})
    single = TrainSettings(**quick, lr=1e-3)
    slow = TrainSettings(**quick, lr=1e-5)
    runs = {
        tag: cross_validate(effect_cohort, "brainnetcnn", settings, folds=[1], tag=f"lr-{tag}")
        for tag, settings in (("mapped", mapped), ("single", single), ("slow", slow))
    }
    pd.testing.assert_frame_equal(runs["mapped"], runs["single"])
    assert not np.allclose(runs["mapped"]["probability"], runs["slow"]["probability"])


@pytest.fixture(scope="module")
def effect_predictions(effect_cohort) -> dict[str, pd.DataFrame]:
    """Out-of-fold predictions of every fold's model, trained in ``effect_cohort/models``."""
    order = ("cnn3d", "brainnetcnn", "fusion", "svm_gm")  # fusion starts from the branches
    return {m: cross_validate(effect_cohort, m) for m in order}


def test_planted_effect_is_found(effect_cohort, effect_predictions):
    results = effect_predictions
    for model, predictions in results.items():
        accuracy, low, _ = accuracy_interval(predictions)
        print(f"effect: {model} accuracy {accuracy:.3f} (95 % low {low:.3f})")
        if model != "cnn3d":  # 8 mm grid, 40 training subjects: the T1 branch is weak
            assert low > 0.5, model  # binomial evidence against chance at the 2.5 % level
    # Label permutation through the whole pipeline (inner CV, scaling, feature selection),
    # in two jobs as the workflow runs them.
    chunks = permutation_chunks(20, 12)
    assert chunks == [(1, 12), (13, 20)]
    null_files = [permutation_file(effect_cohort / "models", "svm_gm", *c) for c in chunks]
    for (first, last), path in zip(chunks, null_files, strict=True):
        run_permutations(
            "svm_gm",
            effect_cohort / "models" / "cohort",
            split_paths(effect_cohort / "models" / "splits", FOLDS),
            range(first, last + 1),
            SETTINGS,
            path,
        )
    null = pd.concat([pd.read_csv(path, sep="\t") for path in null_files])
    assert null["permutation"].tolist() == list(range(1, 21))
    observed = accuracy_interval(results["svm_gm"])[0]
    assert permutation_p(observed, null["accuracy"]) < 0.05
    # In process, without permutation, the whole pipeline scores as the fold jobs did.
    rerun = cross_validated_scores(
        "svm_gm",
        Cohort(effect_cohort / "models" / "cohort"),
        split_paths(effect_cohort / "models" / "splits", FOLDS),
        SETTINGS,
    )
    assert rerun["accuracy"] == pytest.approx(observed)
    out = evaluation_outputs(effect_cohort / "evaluation")
    evaluate(
        {
            m: [fold_outputs(effect_cohort / "models", m, k)["predictions"] for k in range(FOLDS)]
            for m in results
        },
        {
            m: [fold_outputs(effect_cohort / "models", m, k)["history"] for k in range(FOLDS)]
            for m in ("brainnetcnn", "fusion")
        },
        {"svm_gm": null_files},
        ["brainnetcnn", "svm_gm"],
        {"early_fusion": "needs T1w, absent from input.modalities"},
        out,
        ("HC", "StD"),
        n_boot=200,
    )
    assert all(path.is_file() for path in out.values())
    summary = out["summary"].read_text()
    assert "`early_fusion`: needs T1w" in summary and "fusion" in summary
    tested = pd.read_csv(out["permutations"], sep="\t").set_index("model")
    assert tested.loc["svm_gm", "permutations"] == 20 and tested.loc["svm_gm", "p"] < 0.05
    comparisons = pd.read_csv(out["comparisons"], sep="\t")
    assert comparisons["versus"].tolist() == ["brainnetcnn", "svm_gm"]


@pytest.fixture(scope="module")
def null_predictions(null_cohort) -> dict[str, pd.DataFrame]:
    """Out-of-fold predictions on the cohort without an effect (``null_cohort/models``)."""
    models = ("cnn3d", "brainnetcnn", "fusion", "svm_connectivity", "svm_gm", "logreg_tangent")
    return {m: cross_validate(null_cohort, m) for m in models}


def test_no_effect_no_finding(null_predictions):
    for model, predictions in null_predictions.items():
        accuracy, low, high = accuracy_interval(predictions)
        print(f"null: {model} accuracy {accuracy:.3f} ({low:.3f}-{high:.3f})")
        assert low < 0.5 < high, model


def _encoder_files(root: Path) -> dict[str, list[Path]]:
    return {
        name: [fold_outputs(root / "models", name, k)["model"] for k in range(FOLDS)]
        for name in ENCODERS
    }


def _retrieval_summary(root: Path, out: dict[str, Path]) -> pd.DataFrame:
    """Pooled retrieval scores (one row per feature set) of the models in ``root/models``."""
    summary = run_retrieval(
        root / "models" / "cohort",
        split_paths(root / "models" / "splits", FOLDS),
        _encoder_files(root),
        root / "rawdata" / "participants.tsv",
        out,
        5,
    )
    overall = summary[(summary.fold == "all") & (summary.group == "all")].set_index("features")
    print(overall.to_string())
    return overall


def test_retrieval_library_of_the_trained_folds(effect_cohort, effect_predictions, tmp_path):
    """Every fold's encoders embed that fold's subjects: test subjects as queries, the
    rest as gallery; embeddings are reproducible; learned features beat the class prior."""
    root = effect_cohort
    splits = split_paths(root / "models" / "splits", FOLDS)
    models = _encoder_files(root)
    out = retrieval_outputs(tmp_path)
    summary = _retrieval_summary(root, out)
    cohort = Cohort(root / "models" / "cohort")
    for name, dim in ENCODERS.items():
        for k, split_file in enumerate(splits):
            split = pd.read_csv(split_file, sep="\t")
            queries = read_entries(out["library"], name, k, "query")
            gallery = read_entries(out["library"], name, k, "gallery")
            assert (
                list(queries.participant_ids)
                == split.loc[split.role == "test", "participant_id"].tolist()
            )
            assert set(gallery.participant_ids) == set(
                split.loc[split.role != "test", "participant_id"]
            )
            assert queries.vectors.shape[1] == dim
        artefact = torch.load(models[name][0], map_location="cpu", weights_only=True)
        ids = list(cohort.ids[:7])
        np.testing.assert_allclose(
            embed(name, artefact, cohort, ids), embed(name, artefact, cohort, ids, batch_size=3),
            rtol=1e-4, atol=1e-5,
        )  # fmt: skip
        stored = read_entries(out["library"], name, 0)
        again = embed(name, artefact, cohort, list(stored.participant_ids))
        np.testing.assert_array_equal(stored.vectors, again)
    overall = summary
    assert set(overall.index) == {*ENCODERS, "raw_connectivity", "raw_t1"}
    assert ((overall["precision_at_k"] >= 0) & (overall["precision_at_k"] <= 1)).all()
    # Measured: fusion MAP 0.714, prior 0.543, raw connectivity 0.561, raw T1 0.691.
    assert overall.loc["fusion", "map"] > overall.loc["fusion", "prior_map"] + 0.1
    assert overall.loc["fusion", "map"] > overall.loc["raw_connectivity", "map"]
    assert out["figure"].stat().st_size > 10_000


#: Spread of a chance MAP around the class prior with 59 queries of 3 folds: per-query AP
#: has an SD of about 0.15, so the MAP's SE is about 0.02; measured differences here
#: 0.009, -0.014 and -0.034 (cnn3d, brainnetcnn, fusion), against +0.17 for fusion with the
#: planted effect.
MAP_NOISE = 0.07


def test_retrieval_without_effect_is_at_chance(null_cohort, null_predictions, tmp_path):
    overall = _retrieval_summary(null_cohort, retrieval_outputs(tmp_path))
    for name in ENCODERS:
        assert abs(overall.loc[name, "map"] - overall.loc[name, "prior_map"]) < MAP_NOISE, name


def test_new_subject_is_embedded_by_the_final_model(effect_cohort, effect_predictions, tmp_path):
    """The final models (every subject trains) go into the library with every subject as
    gallery; a subject's own derivative files, given as a "new" subject, come back with its
    stored vector and as its own nearest neighbour."""
    root = effect_cohort
    cohort_dir, splits = root / "models" / "cohort", root / "models" / "splits"
    create_final_split(cohort_dir, splits / "final.tsv", 0, 0.2)
    final = {}
    for name in ("cnn3d", "brainnetcnn", "fusion"):
        branches = {b: root / "final" / b / FINAL for b in MODELS[name].branches}
        out = fold_outputs(root / "final", name, FINAL)
        run_fold(name, cohort_dir, splits / "final.tsv", FINAL, out, SETTINGS, branches or None)
        final[name] = out["model"]
        record = json.loads(out["provenance"].read_text())
        assert record["split"]["test"] == [] and len(record["fitted"]["network"]) > 40
    out = retrieval_outputs(tmp_path)
    run_retrieval(
        cohort_dir, split_paths(splits, FOLDS), _encoder_files(root),
        root / "rawdata" / "participants.tsv", out, 5, final, splits / "final.tsv",
    )  # fmt: skip
    cohort = Cohort(cohort_dir)
    pid = cohort.ids[4]
    anat = anat_outputs(root / "derivatives", pid)
    conn = connectivity_outputs(root / "derivatives", pid)
    # The networks read tangent-space connectivity: a new subject gives its time series.
    files = {"t1": anat["mni_t1w"], "connectome": conn["timeseries"], "mask": anat["mni_mask"]}
    for name, dim in ENCODERS.items():
        gallery = read_entries(out["library"], name, FINAL_FOLD)
        assert set(gallery.participant_ids) == set(cohort.ids)
        assert set(gallery.roles) == {"gallery"}
        stored = gallery.vectors[list(gallery.participant_ids).index(pid)]
        needed = {"cnn3d": ("t1", "mask"), "brainnetcnn": ("connectome",)}.get(name, files)
        vector = embed_new_subject(out["library"], name, **{k: files[k] for k in needed})
        assert vector.shape == (dim,)
        np.testing.assert_allclose(vector, stored, atol=1e-4)
        table = search_new_subject(out["library"], name, 3, **{k: files[k] for k in needed})
        assert table["participant_id"].iloc[0] == pid and table["distance"].iloc[0] < 1e-3
    t1_only = embed_new_subject(out["library"], "fusion", files["t1"], mask=files["mask"])
    assert not np.any(t1_only[64:]) and np.any(t1_only[:64])
    with pytest.raises(NeurofusionError, match="from --connectome"):
        embed_new_subject(out["library"], "brainnetcnn", files["t1"])
    with pytest.raises(NeurofusionError, match="must be one of"):
        embed_new_subject(out["library"], "svm_gm", files["t1"])
    cropped = tmp_path / "cropped.nii.gz"
    img = nib.load(anat["mni_t1w"])
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[:-1], img.affine), cropped)
    with pytest.raises(InputError, match="differs from the cohort's"):
        embed_new_subject(out["library"], "cnn3d", cropped)
    other = tmp_path / "sub-new_timeseries.tsv"
    pd.read_csv(conn["timeseries"], sep="\t").iloc[:, :5].to_csv(other, sep="\t", index=False)
    with pytest.raises(InputError, match="time x 116 values"):
        embed_new_subject(out["library"], "brainnetcnn", connectome=other)
    with pytest.raises(NeurofusionError, match=r"_timeseries\.tsv"):
        embed_new_subject(out["library"], "brainnetcnn", connectome=conn["fisherz"])


@pytest.mark.parametrize("model", ["logreg_tangent", "svm_gm"])
def test_fast_linear_permutations_equal_the_whole_pipeline(effect_cohort, model):
    """The permutation path that reuses each split's label-free work scores exactly as
    the whole pipeline rerun per permutation, so the p-values are the same."""
    cohort_dir = effect_cohort / "models" / "cohort"
    splits = split_paths(effect_cohort / "models" / "splits", FOLDS)
    fast = permutation_scores(model, cohort_dir, splits, range(1, 6), SETTINGS)
    cohort = Cohort(cohort_dir)
    slow = pd.DataFrame(
        [
            cross_validated_scores(
                model, cohort, splits, SETTINGS, permuted_labels(cohort.labels, SETTINGS.seed, p), p
            )
            for p in range(1, 6)
        ]
    )
    for column in ("balanced_accuracy", "accuracy", "auc"):
        np.testing.assert_array_equal(fast[column].to_numpy(), slow[column].to_numpy())
    observed = cross_validated_scores(model, cohort, splits, SETTINGS)["balanced_accuracy"]
    assert permutation_p(observed, fast["balanced_accuracy"]) == permutation_p(
        observed, slow["balanced_accuracy"]
    )
