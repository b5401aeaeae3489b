"""Units of the models stage: network layers, metrics and tests against hand-computed
values, cross-validation splits."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from neurofusion.errors import NeurofusionError
from neurofusion.evaluation.metrics import auc, metrics_with_intervals, wilson_interval
from neurofusion.evaluation.stats import bootstrap_auc_difference, mcnemar_exact, permutation_p
from neurofusion.models import CNN3D, E2E, BrainNetCNN, FusionNet
from neurofusion.templates import mni_brain_mask
from neurofusion.training.features import (
    brain_box_grid,
    glcm_features,
    resample,
    target_grid,
    upper_triangle,
)
from neurofusion.training.loop import train_network
from neurofusion.training.permutations import permutation_chunks, permuted_labels
from neurofusion.training.registry import MODELS
from neurofusion.training.settings import TrainSettings
from neurofusion.training.splits import make_splits


def test_brainnetcnn_layer_shapes():
    model = BrainNetCNN(116, e2e_channels=32, e2n_channels=64, n2g_channels=128).eval()
    x = torch.randn(3, 1, 116, 116)
    h = model.e2e(x)
    assert h.shape == (3, 32, 116, 116)
    h = model.e2n(h)
    assert h.shape == (3, 64, 116, 1)
    assert model.n2g(h).shape == (3, 128, 1, 1)
    assert model.features(x).shape == (3, 64)
    assert model(x).shape == (3, 2)
    # 6 layers of the study: E2E, E2N, N2G, dropout, FC 64, FC 2.
    assert model.fc.out_features == 64 and model.out.in_features == 64


def test_brainnetcnn_dropout_off_in_eval_and_raw_logits():
    torch.manual_seed(0)
    model = BrainNetCNN(20, dropout=0.5)
    x = torch.randn(4, 1, 20, 20)
    model.train()
    assert not torch.equal(model(x), model(x)), "dropout must act in training"
    model.eval()
    logits = model(x)
    assert torch.equal(logits, model(x))
    model.out.bias.data.fill_(-5.0)  # no activation after the output layer
    assert (model(x) < 0).any()


def test_e2e_equals_direct_loop():
    torch.manual_seed(1)
    layer = E2E(2, 3, 6)
    x = torch.randn(2, 2, 6, 6)
    row, col = layer.row.weight.detach(), layer.col.weight.detach()  # (3,2,1,6), (3,2,6,1)
    bias = layer.row.bias.detach()
    expected = torch.zeros(2, 3, 6, 6)
    for b in range(2):
        for o in range(3):
            for i in range(6):
                for j in range(6):
                    total = bias[o].clone()
                    for c in range(2):
                        for k in range(6):
                            total += (
                                row[o, c, 0, k] * x[b, c, i, k] + col[o, c, k, 0] * x[b, c, k, j]
                            )
                    expected[b, o, i, j] = total
    torch.testing.assert_close(layer(x), expected, rtol=1e-5, atol=1e-5)


def test_e2e_initialisation_accounts_for_row_plus_column_fan_in():
    layer = E2E(1, 256, 116)
    expected = math.sqrt(2 / (1 + 0.33**2)) / math.sqrt(2 * 116)
    assert layer.row.weight.std().item() == pytest.approx(expected, rel=0.05)


def test_cnn3d_and_fusion_shapes():
    cnn = CNN3D((39, 47, 40))  # the 4 mm brain box
    assert cnn.fc.in_features == 64 * 2 * 2 * 2
    fusion = FusionNet(CNN3D((16, 16, 16)), BrainNetCNN(10)).eval()
    out = fusion(torch.randn(2, 1, 16, 16, 16), torch.randn(2, 1, 10, 10))
    assert out.shape == (2, 2) and fusion.out.in_features == 128


def test_wilson_interval_hand_computed():
    # 7 of 10, z = 1.959964: centre (0.7 + 0.19208) / 1.38415, half-width
    # 1.959964 * sqrt(0.021 + 0.0096040) / 1.38415.
    low, high = wilson_interval(7, 10)
    assert low == pytest.approx(0.39677, abs=1e-4)
    assert high == pytest.approx(0.89222, abs=1e-4)
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)


def test_mcnemar_exact_hand_computed():
    labels = np.ones(10, dtype=int)
    a = np.array([1, 1, 1, 0, 0, 0, 0, 0, 0, 1])  # right on 0-2 and 9
    b = np.array([0, 1, 1, 1, 1, 1, 1, 1, 1, 1])  # right on 1-9
    result = mcnemar_exact(labels, a, b)
    assert (result["a_only"], result["b_only"]) == (1, 6)
    assert result["p"] == pytest.approx(2 * (1 + 7) / 2**7)  # 0.125
    assert mcnemar_exact(labels, a, a)["p"] == 1.0


def test_auc_hand_computed_and_bootstrap_difference():
    labels = np.array([0, 0, 1, 1])
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    assert auc(labels, scores) == pytest.approx(0.75)  # 3 of 4 pairs ordered
    # pairs (pos, neg): (0.5, 0.5) x2 count 1/2 each, (0.9, 0.5) x2 count 1: 3 / 4.
    assert auc(labels, np.array([0.5, 0.5, 0.5, 0.9])) == pytest.approx(0.75)
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 30)
    good = y + rng.normal(0, 0.5, 60)
    diff = bootstrap_auc_difference(y, good, good, n_boot=200)
    assert diff["difference"] == 0 and diff["p"] == 1.0


def test_metrics_table_intervals():
    y = np.array([1] * 10 + [0] * 10)
    prob = np.array([0.9] * 8 + [0.1] * 2 + [0.2] * 9 + [0.7])
    table = metrics_with_intervals(y, prob, n_boot=200)
    assert table.loc["accuracy", "value"] == pytest.approx(17 / 20)
    assert table.loc["sensitivity", "value"] == pytest.approx(0.8)
    assert table.loc["specificity", "value"] == pytest.approx(0.9)
    assert table.loc["precision", "value"] == pytest.approx(8 / 9)
    assert table.loc["f1", "value"] == pytest.approx(16 / 19)
    low, high = wilson_interval(17, 20)
    assert table.loc["accuracy", ["low", "high"]].tolist() == pytest.approx([low, high])
    assert table.loc["auc", "low"] <= table.loc["auc", "value"] <= table.loc["auc", "high"]


def test_permutation_p():
    assert permutation_p(0.9, np.full(20, 0.5)) == pytest.approx(1 / 21)
    assert permutation_p(0.5, np.full(20, 0.5)) == pytest.approx(1.0)


def test_splits_stratified_disjoint_seeded():
    cohort = pd.DataFrame(
        {"participant_id": [f"sub-{i:02d}" for i in range(30)], "group": ["A"] * 12 + ["B"] * 18}
    )
    splits = make_splits(cohort, folds=3, repeats=2, seed=5)
    assert len(splits) == 6
    for repeat in range(2):
        tests = [set(s.loc[s.role == "test", "participant_id"]) for s in splits[3 * repeat :][:3]]
        assert set.union(*tests) == set(cohort.participant_id)
        assert sum(map(len, tests)) == 30  # each subject tested once per repeat
    for split in splits:
        test = split[split.role == "test"]
        assert test.group.value_counts().to_dict() == {"B": 6, "A": 4}  # stratified
        val = split[split.role == "validation"]
        assert set(val.group) == {"A", "B"}
    again = make_splits(cohort, folds=3, repeats=2, seed=5)
    assert all(a.equals(b) for a, b in zip(splits, again, strict=True))
    other = make_splits(cohort, folds=3, repeats=2, seed=6)
    assert not all(a.equals(b) for a, b in zip(splits, other, strict=True))


def test_small_cohorts_keep_one_validation_subject_per_group():
    """Six subjects in 3 folds: each training fold of 4 sets one per group aside (20 %
    would be one subject, which cannot be stratified); 2 per group in 2 folds cannot."""
    cohort = pd.DataFrame(
        {"participant_id": [f"sub-{i}" for i in range(6)], "group": ["A", "B"] * 3}
    )
    for split in make_splits(cohort, folds=3, seed=0):
        assert split[split.role == "validation"].group.value_counts().to_dict() == {
            "A": 1,
            "B": 1,
        }
    with pytest.raises(NeurofusionError, match="too few to set one aside"):
        make_splits(cohort.iloc[:4], folds=2, seed=0)


def test_upper_triangle_and_grid():
    m = np.arange(16, dtype=float).reshape(1, 4, 4)
    assert upper_triangle(m).tolist() == [[1, 2, 3, 6, 7, 11]]
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-98, -134, -72]
    out, shape = target_grid(affine, (99, 117, 95), 4)
    assert shape == (50, 59, 48)
    assert out[:3, 3].tolist() == [-97, -133, -71]  # centre of the first 2 x 2 x 2 block


def test_brain_box_grid_keeps_every_brain_voxel_of_the_full_grid():
    mask = mni_brain_mask(2)
    data = np.asarray(mask.dataobj, dtype=np.float32)
    full_affine, full_shape = target_grid(mask.affine, data.shape, 4)
    box_affine, box_shape = brain_box_grid(mask.affine, data.shape, 4)
    assert box_shape == (39, 47, 40)
    # Same voxel centres: the box starts on a whole voxel of the full grid.
    offset = np.linalg.inv(full_affine) @ box_affine[:, 3]
    assert np.allclose(offset, np.round(offset))
    assert np.allclose(box_affine[:3, :3], full_affine[:3, :3])
    on_full = resample(data, mask.affine, full_affine, full_shape)
    on_box = resample(data, mask.affine, box_affine, box_shape)
    assert on_box.sum() == pytest.approx(on_full.sum(), rel=1e-6)
    # One voxel to spare where the source field of view allows (not below: the template's
    # brain mask reaches the bottom of its grid): no brain at the edge voxels' centres.
    centres = resample(data, mask.affine, box_affine, box_shape, order=0)
    assert not centres[[0, -1]].any() and not centres[:, [0, -1]].any()
    assert not centres[..., -1].any() and centres[..., 0].any()


def test_glcm_of_a_checkerboard():
    # Alternating levels 1, 2 along y: every horizontal pair differs by 1 (contrast 1),
    # every vertical pair (along x) is equal.
    q = np.tile(np.array([1, 2] * 3, dtype=np.uint8), (4, 1))[:, :, None].repeat(2, axis=2)
    contrast, homogeneity, energy, correlation = glcm_features(q, np.ones(q.shape, bool))
    assert 0 < contrast < 1 and 0 < homogeneity < 1 and energy > 0
    assert -1 <= correlation <= 1


def test_training_params_leave_out_what_does_not_change_a_model():
    """Rule params of the training jobs: raising the permutation or bootstrap count, or
    the threads, must not retrain every model."""
    models = yaml.safe_load((REPO / "config.yaml").read_text())["models"]
    entries = TrainSettings.training_entries(models)
    assert {"epochs", "lr", "seed", "modality_dropout", "fusion_init"} <= set(entries)
    assert not {"permutations", "bootstrap", "enabled", "threads", "folds"} & set(entries)
    assert TrainSettings.from_config(entries, threads=2) == TrainSettings.from_config(
        models, threads=2
    )
    for model, networks in (("svm_gm", ()), ("cnn3d", ("cnn3d",)),
                            ("late_fusion", ("brainnetcnn", "cnn3d"))):  # fmt: skip
        assert MODELS[model].networks(model) == networks
    models["lr"] = {"default": 2e-4, "brainnetcnn": 1e-3}
    assert "lr" not in TrainSettings.training_entries(models, ())
    assert TrainSettings.training_entries(models, ("cnn3d",))["lr"] == {"cnn3d": 2e-4}
    fusion = TrainSettings.from_config(
        TrainSettings.training_entries(models, ("brainnetcnn", "cnn3d", "fusion"))
    )
    assert [fusion.for_model(n).lr for n in ("brainnetcnn", "cnn3d", "fusion")] == [
        1e-3,
        2e-4,
        2e-4,
    ]


def test_learning_rate_is_one_number_or_one_per_model():
    mapped = TrainSettings.from_config({"lr": {"brainnetcnn": 1e-3, "default": 2e-4}})
    assert mapped.for_model("brainnetcnn").lr == 1e-3
    assert mapped.for_model("cnn3d").lr == mapped.for_model("fusion").lr == 2e-4
    assert mapped.for_model("brainnetcnn").model_lr == ()
    without_default = TrainSettings.from_config({"lr": {"fusion": 3e-4}})
    assert without_default.for_model("cnn3d").lr == TrainSettings.lr
    single = TrainSettings.from_config({"lr": 5e-4})
    assert {single.for_model(m).lr for m in ("cnn3d", "brainnetcnn", "fusion")} == {5e-4}
    assert json.loads(json.dumps(mapped.as_dict()))["model_lr"] == [["brainnetcnn", 1e-3]]
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    schema = REPO / "rules" / "schemas" / "config.schema.yaml"
    for lr in (1e-3, {"default": 1e-4, "brainnetcnn": 1e-3}):
        validate({**config, "models": {**config["models"], "lr": lr}}, str(schema))
    for lr in ({"svm_gm": 1e-3}, {"brainnetcnn": 0}, {}):  # not a deep model; not > 0; empty
        with pytest.raises(WorkflowError):
            validate({**config, "models": {**config["models"], "lr": lr}}, str(schema))


def test_permutation_jobs_cover_each_permutation_once():
    assert permutation_chunks(5, 2) == [(1, 2), (3, 4), (5, 5)]
    assert permutation_chunks(0, 2) == []
    # Raising the count keeps every finished job's range but the last.
    assert permutation_chunks(8, 2)[:2] == permutation_chunks(5, 2)[:2]
    with pytest.raises(ValueError, match="per job"):
        permutation_chunks(5, 0)
    labels = np.array([0] * 10 + [1] * 10)
    # A permutation's labels depend on its index only, not on the job that runs it.
    assert np.array_equal(permuted_labels(labels, 0, 3), permuted_labels(labels, 0, 3))
    assert not np.array_equal(permuted_labels(labels, 0, 3), permuted_labels(labels, 0, 4))
    assert sorted(permuted_labels(labels, 0, 3)) == sorted(labels)


def test_min_epochs_keeps_early_stopping_off_the_first_epochs():
    """A validation set whose labels are the training labels flipped: its loss is lowest
    before training, so plain early stopping keeps epoch 1 and stops after ``patience``;
    with ``min_epochs`` the run lasts at least that long and keeps a later epoch."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 1, 4)).astype(np.float32)
    y = (x[:, 0, 0] > 0).astype(int)
    build = lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))  # noqa: E731
    runs = {}
    for min_epochs in (0, 6):
        settings = TrainSettings(epochs=12, patience=2, min_epochs=min_epochs, lr=0.05,
                                 stopping="validation", schedule="constant")  # fmt: skip
        _, _, history = train_network(build, [x], y, [x], 1 - y, settings, seed=0)
        runs[min_epochs] = history
    plain, warm = runs[0], runs[6]  # each history starts with epoch 0, before training
    trained = plain[plain.epoch >= 1]
    assert trained.validation_loss.iloc[0] < trained.validation_loss.iloc[1:].min()
    assert plain.epoch[plain.best == 1].tolist() == [1] and plain.epoch.max() == 3
    assert warm.epoch.max() == 8 and warm.epoch[warm.best == 1].tolist() == [6]
    assert warm.train_accuracy.iloc[-1] >= 0.9


def test_fusion_warm_start_is_the_mean_of_its_branches():
    """With ``fusion_init: branches`` the untrained fusion scores a subject with the mean
    of its two trained branches' logits."""
    from neurofusion.training.deep import build_network, ensemble_head

    torch.manual_seed(0)
    cnn, brainnet = build_network("cnn3d", (16, 16, 16)), build_network("brainnetcnn", n_regions=20)
    for branch in (cnn, brainnet):  # as trained heads: far from the near-zero initialisation
        torch.nn.init.normal_(branch.out.weight)
        torch.nn.init.normal_(branch.out.bias)
    state = {f"cnn.{k}": v for k, v in cnn.state_dict().items()}
    state |= {f"brainnet.{k}": v for k, v in brainnet.state_dict().items()}
    fusion = build_network("fusion", (16, 16, 16), 20)
    fusion.load_state_dict(state | ensemble_head(state))
    t1, fc = torch.randn(3, 1, 16, 16, 16), torch.randn(3, 1, 20, 20)
    for net in (fusion, cnn, brainnet):
        net.eval()
    torch.testing.assert_close(fusion(t1, fc), 0.5 * (cnn(t1) + brainnet(fc)))


def test_inner_cv_shrinks_to_the_smaller_group():
    from neurofusion.training.fold import inner_cv

    assert inner_cv(np.array([0, 0, 0, 1, 1, 1, 1]), 3, 0).get_n_splits() == 3
    assert inner_cv(np.array([0, 0, 1, 1, 1, 1]), 3, 0).get_n_splits() == 2
    assert inner_cv(np.array([0, 1, 1, 1]), 3, 0) is None


def test_balanced_accuracy_is_scikit_learns():
    from sklearn.metrics import balanced_accuracy_score

    from neurofusion.training.linear import balanced_accuracy

    rng = np.random.default_rng(1)
    for _ in range(20):
        truth = rng.integers(0, 2, 17)
        truth[:2] = [0, 1]
        guess = rng.integers(0, 2, 17)
        assert balanced_accuracy(truth, guess) == pytest.approx(
            balanced_accuracy_score(truth, guess), abs=1e-12
        )


@pytest.mark.parametrize("c", [0.001, 0.01, 0.1, 1.0])
def test_balanced_logistic_is_scikit_learns_model(c):
    from sklearn.linear_model import LogisticRegression

    from neurofusion.training.linear import BalancedLogistic

    rng = np.random.default_rng(2)
    x = rng.standard_normal((75, 60))
    y = (x[:, 0] + rng.standard_normal(75) > 0.6).astype(int)  # unbalanced classes
    ours = BalancedLogistic(c).fit(x, y)
    theirs = LogisticRegression(C=c, class_weight="balanced", tol=1e-12, max_iter=10_000).fit(x, y)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, atol=1e-6)
    np.testing.assert_allclose(ours.decision_function(x), theirs.decision_function(x), atol=1e-5)
