"""Feature library and retrieval: a library of small known vectors, checked against values
computed by hand."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from neurofusion.errors import InputError, NeurofusionError
from neurofusion.retrieval.evaluate import (
    CLASS_PRIOR,
    compare_maps,
    evaluate_library,
    raw_feature_scores,
    retrieval_scores,
    summarise,
)
from neurofusion.retrieval.library import Entries, fold_entries, read_entries, write_library
from neurofusion.retrieval.metrics import (
    average_precision,
    precision_at_k,
    random_average_precision,
    recall_at_k,
)
from neurofusion.retrieval.search import nearest, search_subject

# Fold 0: two queries, five gallery subjects, 2-d vectors chosen for round distances.
# From q1 = (0, 0), group A:
#   a1 (0, 1) -> 1, b1 (0, 2) -> 2, a2 (3, 4) -> 5, b2 (6, 8) -> 10, a3 (0, -20) -> 20
#   ranked groups A B A B A, relevant 1 0 1 0 1 (3 relevant)
#   P@1 = 1, P@2 = 1/2, P@3 = 2/3; R@2 = 1/3, R@3 = 2/3
#   AP = (1/1 + 2/3 + 3/5) / 3 = 34/45
# From q2 = (0, 3), group B:
#   b1 -> 1, a1 -> 2, a2 -> sqrt(10), b2 -> sqrt(61), a3 -> 23
#   ranked groups B A A B A, relevant 1 0 0 1 0 (2 relevant)
#   P@2 = 1/2, R@2 = 1/2, AP = (1/1 + 2/4) / 2 = 3/4
FOLD0 = {
    "sub-q1": ("A", "query", (0, 0)),
    "sub-q2": ("B", "query", (0, 3)),
    "sub-a1": ("A", "gallery", (0, 1)),
    "sub-b1": ("B", "gallery", (0, 2)),
    "sub-a2": ("A", "gallery", (3, 4)),
    "sub-b2": ("B", "gallery", (6, 8)),
    "sub-a3": ("A", "gallery", (0, -20)),
}
# Fold 1: other roles and other vectors; a fold-1 vector of group B sits exactly on q1's
# fold-0 vector, so any mixing of folds would change q1's fold-0 scores.
FOLD1 = {
    "sub-a1": ("A", "query", (5, 5)),
    "sub-b1": ("B", "query", (-5, -5)),
    "sub-q1": ("A", "gallery", (4, 4)),
    "sub-q2": ("B", "gallery", (0, 0)),
    "sub-a2": ("A", "gallery", (6, 6)),
    "sub-b2": ("B", "gallery", (-4, -4)),
    "sub-a3": ("A", "gallery", (-6, -6)),
}
AGES = {"sub-q1": 30, "sub-q2": 41, "sub-a1": 25, "sub-b1": 52, "sub-a2": 33, "sub-b2": 60}


def _entries(model: str, fold: int, spec: dict) -> Entries:
    ids = list(spec)
    return Entries(
        model=model,
        fold=fold,
        participant_ids=ids,
        groups=[spec[pid][0] for pid in ids],
        roles=[spec[pid][1] for pid in ids],
        vectors=np.array([spec[pid][2] for pid in ids], dtype=np.float32),
        metadata=[{"age": AGES[pid], "site": "x"} if pid in AGES else {} for pid in ids],
    )


@pytest.fixture
def library(tmp_path):
    return write_library(
        tmp_path / "library.sqlite",
        [_entries("fusion", 0, FOLD0), _entries("fusion", 1, FOLD1)],
    )


def test_library_round_trip(library):
    gallery = read_entries(library, "fusion", 0, "gallery")
    assert list(gallery.participant_ids) == ["sub-a1", "sub-b1", "sub-a2", "sub-b2", "sub-a3"]
    assert list(gallery.groups) == ["A", "B", "A", "B", "A"]
    assert gallery.vectors.dtype == np.float32 and gallery.vectors.shape == (5, 2)
    np.testing.assert_array_equal(gallery.vectors[2], [3, 4])
    assert gallery.metadata[0] == {"age": 25, "site": "x"} and gallery.metadata[4] == {}
    queries = read_entries(library, "fusion", 1, "query")
    assert list(queries.participant_ids) == ["sub-a1", "sub-b1"]
    np.testing.assert_array_equal(queries.vectors, [[5, 5], [-5, -5]])


def test_failed_write_leaves_nothing(tmp_path, library):
    before = library.read_bytes()
    wrong_dim = Entries("fusion", 2, ["sub-x"], ["A"], ["query"], np.zeros((1, 3)))
    with pytest.raises(ValueError, match="vectors of length 3, other folds have 2"):
        write_library(library, [_entries("fusion", 0, FOLD0), wrong_dim])
    assert library.read_bytes() == before
    with pytest.raises(ValueError, match="vectors of length 3"):
        write_library(tmp_path / "new.sqlite", [_entries("fusion", 0, FOLD0), wrong_dim])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["library.sqlite"]


def test_fold_entries_maps_split_roles_and_metadata():
    split = pd.DataFrame(
        {
            "participant_id": ["sub-1", "sub-2", "sub-3"],
            "group": ["A", "B", "A"],
            "role": ["train", "validation", "test"],
        }
    )
    participants = pd.DataFrame(
        {
            "participant_id": ["sub-3", "sub-1", "sub-2"],
            "subject": ["3", "1", "2"],
            "group": ["A", "A", "B"],
            "age": ["70", "50", "60"],
        }
    )
    entries = fold_entries("cnn3d", 4, split, np.eye(3), participants)
    assert list(entries.roles) == ["gallery", "gallery", "query"]
    assert [m["age"] for m in entries.metadata] == ["50", "60", "70"]
    assert entries.vectors.dtype == np.float32


def test_nearest_order_distances_and_ties():
    gallery = np.array([[0, 1], [0, 2], [3, 4], [6, 8], [0, -20]], dtype=np.float32)
    indices, distance = nearest(np.zeros(2), gallery, 3)
    np.testing.assert_array_equal(indices, [0, 1, 2])
    np.testing.assert_allclose(distance, [1, 2, 5])
    indices, distance = nearest(np.zeros(2), gallery, 50)  # k above the gallery size
    np.testing.assert_array_equal(indices, [0, 1, 2, 3, 4])
    np.testing.assert_allclose(distance, [1, 2, 5, 10, 20])
    ties = np.array([[1, 0], [0, 1], [-1, 0], [0, -1], [2, 0]], dtype=np.float32)
    for k in (2, 4):  # ties at distance 1 come in gallery order, partial sort or not
        np.testing.assert_array_equal(nearest(np.zeros(2), ties, k)[0], [0, 1, 2, 3][:k])


def test_nearest_rejects_wrong_length_and_k():
    with pytest.raises(ValueError, match="length 3 but the gallery's have 2"):
        nearest(np.zeros(3), np.zeros((4, 2)), 1)
    with pytest.raises(ValueError, match="k must be at least 1"):
        nearest(np.zeros(2), np.zeros((4, 2)), 0)


def test_metrics_by_hand():
    relevant = np.array([[1, 0, 1, 0, 1], [1, 0, 0, 1, 0]], dtype=bool)  # q1, q2 above
    np.testing.assert_allclose(precision_at_k(relevant, 1), [1, 1])
    np.testing.assert_allclose(precision_at_k(relevant, 2), [1 / 2, 1 / 2])
    np.testing.assert_allclose(precision_at_k(relevant, 3), [2 / 3, 1 / 3])
    np.testing.assert_allclose(recall_at_k(relevant, 2), [1 / 3, 1 / 2])
    np.testing.assert_allclose(recall_at_k(relevant, 3), [2 / 3, 1 / 2])
    np.testing.assert_allclose(average_precision(relevant), [34 / 45, 3 / 4])
    # No relevant entry: recall and AP undefined.
    assert np.isnan(average_precision(np.zeros(4, dtype=bool))).all()
    assert np.isnan(recall_at_k(np.zeros(4, dtype=bool), 2)).all()


def test_class_prior_is_mean_ap_of_every_ranking():
    # N = 5, R = 3 and R = 2: average AP over all 5! rankings equals the closed form
    # (R - 1)/(N - 1) + (N - R)/(N - 1) * H_5 / 5 with H_5 = 137/60:
    #   R = 3: 1/2 + 1/2 * 137/300 = 0.72833...; R = 2: 1/4 + 3/4 * 137/300 = 0.5925
    for n_relevant, expected in ((3, 1 / 2 + 137 / 600), (2, 1 / 4 + 3 * 137 / 1200)):
        labels = [True] * n_relevant + [False] * (5 - n_relevant)
        orders = np.array(list(itertools.permutations(labels)))
        assert math.isclose(average_precision(orders).mean(), expected)
        assert math.isclose(random_average_precision([n_relevant], 5)[0], expected)
    np.testing.assert_allclose(random_average_precision([1, 0], 1), [1, np.nan])
    # Large gallery: tends to the class's share of the gallery.
    assert abs(random_average_precision([3000], 10000)[0] - 0.3) < 1e-3


def test_retrieval_scores_by_hand():
    queries = [FOLD0["sub-q1"], FOLD0["sub-q2"]]
    gallery = [value for value in FOLD0.values() if value[1] == "gallery"]
    scores = retrieval_scores(
        np.array([q[2] for q in queries]),
        [q[0] for q in queries],
        np.array([g[2] for g in gallery]),
        [g[0] for g in gallery],
        k=2,
    )
    assert scores["group"].tolist() == ["A", "B"]
    np.testing.assert_allclose(scores["precision_at_k"], [1 / 2, 1 / 2])
    np.testing.assert_allclose(scores["recall_at_k"], [1 / 3, 1 / 2])
    np.testing.assert_allclose(scores["ap"], [34 / 45, 3 / 4])
    np.testing.assert_allclose(scores["prior_ap"], [1 / 2 + 137 / 600, 1 / 4 + 3 * 137 / 1200])


def _query_scores(features: str, ap: list[float], prior: list[float]) -> pd.DataFrame:
    """Per-query scores of four queries (two per group, in two folds)."""
    return pd.DataFrame(
        {
            "features": features,
            "fold": [0, 0, 1, 1],
            "participant_id": ["sub-1", "sub-2", "sub-3", "sub-4"],
            "group": ["A", "B", "A", "B"],
            "ap": ap,
            "prior_ap": prior,
        }
    )


def test_map_comparisons_pair_queries_and_bound_the_difference():
    prior = [0.5, 0.5, 0.6, 0.6]
    scores = pd.concat(
        [
            # listed in another order: pairing is by fold and participant, not by row
            _query_scores("learned", [1.0, 0.9, 0.8, 0.7], prior).iloc[::-1],
            _query_scores("raw", [0.8, 0.5, 0.8, 0.3], prior),
            _query_scores("same", [1.0, 0.9, 0.8, 0.7], prior),
        ]
    )
    table = compare_maps(scores, ["learned"], n_boot=500, seed=1).set_index("baseline")
    assert sorted(table.index) == sorted(["raw", "same", CLASS_PRIOR])
    # raw: differences 0.2, 0.4, 0, 0.4 -> 0.25; every resample is >= 0 and most > 0
    row = table.loc["raw"]
    assert math.isclose(row["map"], 0.85) and math.isclose(row["baseline_map"], 0.6)
    assert math.isclose(row["difference"], 0.25) and row["n_queries"] == 4
    assert 0.0 <= row["low"] <= 0.25 <= row["high"] <= 0.4
    # prior: differences 0.5, 0.4, 0.2, 0.1 -> 0.3, all positive: the interval excludes 0
    row = table.loc[CLASS_PRIOR]
    assert math.isclose(row["difference"], 0.3) and row["low"] > 0 and row["p"] == 0.0
    # identical scores: difference 0 in every resample, p = 1
    row = table.loc["same"]
    assert row["difference"] == row["low"] == row["high"] == 0.0 and row["p"] == 1.0
    # same seed, same table
    pd.testing.assert_frame_equal(
        table, compare_maps(scores, ["learned"], n_boot=500, seed=1).set_index("baseline")
    )


def test_raw_feature_baseline_scales_with_gallery_only():
    # Feature 0 separates the groups, feature 1 is in thousands. z-scored with the gallery's
    # mean and SD (feature 0: 1/2, 1/2; feature 1: 1500, 1118), the query (1, 0) becomes
    # (1, -1.342), the gallery A (-1, -1.342), (-1, 1.342), B (1, -0.447), (1, 0.447):
    # distances 2, 3.35, 0.89, 1.79 -> B B A A, P@2 = 1. Unscaled, A (0, 0) is nearest.
    gallery = np.array([[0, 0], [0, 3000], [1, 1000], [1, 2000]], dtype=float)
    groups = ["A", "A", "B", "B"]
    query = np.array([[1.0, 0.0]])
    scores = raw_feature_scores(query, ["B"], gallery, groups, k=2)
    assert scores["precision_at_k"].tolist() == [1]
    assert retrieval_scores(query, ["B"], gallery, groups, k=2)["precision_at_k"].tolist() == [
        1 / 2
    ]
    # Another, far-off query changes nothing: the scaling comes from the gallery alone.
    both = raw_feature_scores(np.vstack([query, [50, 1e6]]), ["B", "B"], gallery, groups, k=2)
    pd.testing.assert_frame_equal(both.iloc[:1], scores)


def test_evaluate_library_never_mixes_folds(library):
    scores = evaluate_library(library, "fusion", k=2)
    assert scores.groupby("fold")["participant_id"].apply(list).to_dict() == {
        0: ["sub-q1", "sub-q2"],
        1: ["sub-a1", "sub-b1"],
    }
    fold0 = scores[scores["fold"] == 0]
    # q1's fold-0 AP is the hand value although fold 1 puts a group-B vector on top of it.
    np.testing.assert_allclose(fold0["ap"], [34 / 45, 3 / 4])
    # Fold 1 alone, ties at sqrt(2) in gallery order:
    #   a1 = (5, 5): q1 A, a2 A (both sqrt 2), q2 B (sqrt 50), b2 B, a3 A
    #     relevant 1 1 0 0 1 -> AP (1 + 1 + 3/5) / 3 = 13/15
    #   b1 = (-5, -5): b2 B, a3 A (both sqrt 2), q2 B (sqrt 50), q1 A, a2 A
    #     relevant 1 0 1 0 0 -> AP (1 + 2/3) / 2 = 5/6
    fold1 = scores[scores["fold"] == 1]
    np.testing.assert_allclose(fold1["ap"], [13 / 15, 5 / 6])
    summary = summarise(scores).set_index(["fold", "group"])
    assert summary.loc[(0, "all"), "map"] == pytest.approx((34 / 45 + 3 / 4) / 2)
    assert summary.loc[(1, "B"), "map"] == pytest.approx(5 / 6)
    assert summary.loc[("all", "A"), "map"] == pytest.approx((34 / 45 + 13 / 15) / 2)
    assert summary.loc[("all", "all"), "n_queries"] == 4
    assert summary.loc[("all", "all"), "map"] == pytest.approx(
        (34 / 45 + 3 / 4 + 13 / 15 + 5 / 6) / 4
    )


def test_search_subject_excludes_itself(library):
    table = search_subject(library, "q1", "fusion", k=3)  # held out in fold 0
    assert table.attrs == {"fold": 0, "query_group": "A"}
    assert table["participant_id"].tolist() == ["sub-a1", "sub-b1", "sub-a2"]
    np.testing.assert_allclose(table["distance"], [1, 2, 5])
    assert table["age"].tolist() == [25, 52, 33]
    # Fold 1: q1 = (4, 4) is in the gallery there; it is not its own neighbour.
    # a2 (6, 6) -> sqrt(8), q2 (0, 0) -> sqrt(32), b2 (-4, -4) -> sqrt(128), a3 -> sqrt(200)
    table = search_subject(library, "sub-q1", "fusion", k=2, fold=1)
    assert table.attrs == {"fold": 1, "query_group": "A"}
    assert table["participant_id"].tolist() == ["sub-a2", "sub-q2"]
    np.testing.assert_allclose(table["distance"], [math.sqrt(8), math.sqrt(32)])


def test_search_errors_name_the_thing_and_the_fix(library, tmp_path):
    with pytest.raises(InputError, match=r"sub-zz: not in the feature library.*participants"):
        search_subject(library, "sub-zz", "fusion", k=3)
    with pytest.raises(InputError, match=r"sub-zz: .*model 'fusion', fold 1"):
        search_subject(library, "sub-zz", "fusion", k=3, fold=1)
    with pytest.raises(NeurofusionError, match=r"no entries for model 'cnn3d'.*\['fusion'\]"):
        search_subject(library, "sub-q1", "cnn3d", k=3)
    with pytest.raises(NeurofusionError, match=r"has no fold 7; it has folds \[0, 1\]"):
        search_subject(library, "sub-q1", "fusion", k=3, fold=7)
    with pytest.raises(NeurofusionError, match=r"does not exist.*--library"):
        search_subject(tmp_path / "missing.sqlite", "sub-q1", "fusion", k=3)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "neurofusion.cli", "retrieve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_prints_neighbours(library):
    run = _cli("--library", str(library), "--subject", "sub-q2", "--model", "fusion", "--k", "2")
    assert run.returncode == 0, run.stderr
    lines = [line.split("\t") for line in run.stdout.splitlines()]
    assert lines[0] == ["rank", "participant_id", "distance", "group", "age", "site"]
    assert lines[1] == ["1", "sub-b1", "1", "B", "52", "x"]
    assert lines[2] == ["2", "sub-a1", "2", "A", "25", "x"]
    assert "sub-q2 (B): 2 nearest of model fusion, fold 0" in run.stderr


def test_cli_error_exit_status(library):
    run = _cli("--library", str(library), "--subject", "sub-zz")
    assert run.returncode == 1
    assert "sub-zz: not in the feature library for model 'fusion'" in run.stderr
    assert "Traceback" not in run.stderr
