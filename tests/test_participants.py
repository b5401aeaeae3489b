"""The participants table: BIDS-safe labels, unique, two groups, positive group known."""

from __future__ import annotations

import pytest

from neurofusion.bids.participants import load_participants, subject_label
from neurofusion.errors import NeurofusionError


def _table(tmp_path, rows, header="participant_id\tgroup"):
    path = tmp_path / "participants.tsv"
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    return path


def test_prefix_optional_and_normalised(tmp_path):
    table = load_participants(_table(tmp_path, ["sub-01\tStD", "02\tHC"]), positive_group="StD")
    assert list(table["participant_id"]) == ["sub-01", "sub-02"]
    assert list(table["subject"]) == ["01", "02"]


@pytest.mark.parametrize(
    ("rows", "positive", "message"),
    [
        (["sub-01\tStD", "01\tHC"], "StD", "not unique: sub-01"),
        (["sub-01\tStD", "sub-02\tHC", "sub-03\tMDD"], "StD", "exactly two groups, found 3"),
        (["sub-01\tStD", "sub-02\tStD"], "StD", "exactly two groups, found 1"),
        (["sub-01\tA", "sub-02\tB"], "StD", "positive_group 'StD'"),
        (["sub-01\tA", "sub-02\t"], "A", "no group for sub-02"),
    ],
)
def test_table_level_errors(tmp_path, rows, positive, message):
    with pytest.raises(NeurofusionError, match=message):
        load_participants(_table(tmp_path, rows), positive_group=positive)


def test_missing_column_named(tmp_path):
    with pytest.raises(NeurofusionError, match=r"missing column\(s\) \['group'\]"):
        load_participants(_table(tmp_path, ["sub-01"], header="participant_id"))


def test_missing_file_named(tmp_path):
    with pytest.raises(NeurofusionError, match="does not exist"):
        load_participants(tmp_path / "nope.tsv")


@pytest.mark.parametrize("bad", ["sub-01_a", "sub 01", "sub-", "01-02"])
def test_unsafe_labels_rejected(bad):
    with pytest.raises(NeurofusionError, match="not BIDS-safe"):
        subject_label(bad)


def test_optional_columns_kept(tmp_path):
    path = _table(
        tmp_path, ["01\tA\t33\tF\tx", "02\tB\tn/a\tM\ty"], "participant_id\tgroup\tage\tsex\tsite"
    )
    table = load_participants(path)
    assert list(table["age"]) == ["33", "n/a"] and list(table["site"]) == ["x", "y"]
