"""The participants table: who is in the study and in which group.

Row-level checks (types, allowed values) live in ``rules/schemas/participants.schema.yaml``
and run through Snakemake's validator; the checks that need the whole table (unique
labels, exactly two groups, the positive group present) live here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from neurofusion.errors import NeurofusionError

_LABEL = re.compile(r"^[A-Za-z0-9]+$")


def subject_label(participant_id: str) -> str:
    """BIDS label of a participant: ``"sub-01"`` and ``"01"`` both give ``"01"``.

    Raises
    ------
    NeurofusionError
        When the label is not BIDS-safe (letters and digits only).
    """
    label = str(participant_id).strip().removeprefix("sub-")
    if not _LABEL.match(label):
        raise NeurofusionError(
            f"participant_id {participant_id!r} is not BIDS-safe: use letters and digits "
            "only (an optional 'sub-' prefix is allowed), e.g. sub-01 or sub-patient07"
        )
    return label


def load_participants(
    path: str | Path, positive_group: str | None = None, need_two_groups: bool = True
) -> pd.DataFrame:
    """Read and check a BIDS ``participants.tsv``.

    Parameters
    ----------
    path : str or Path
        Tab-separated file with at least ``participant_id`` and ``group`` columns.
    positive_group : str, optional
        The group treated as the positive class; it must occur in the table.
    need_two_groups : bool
        Require exactly two groups (classification needs them).

    Returns
    -------
    pandas.DataFrame
        One row per participant, in file order, with ``participant_id`` normalised to
        ``sub-<label>``, a ``subject`` column holding the bare label, and ``group`` as str.

    Raises
    ------
    NeurofusionError
        Missing file or columns, duplicate or unsafe labels, not two groups, unknown
        positive group. Each message names the file and the fix.
    """
    path = Path(path)
    if not path.is_file():
        raise NeurofusionError(
            f"participants table {path} does not exist; set 'participants' in config.yaml "
            "to a TSV with participant_id and group columns"
        )
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = {"participant_id", "group"} - set(table.columns)
    if missing:
        raise NeurofusionError(
            f"{path}: missing column(s) {sorted(missing)}; a participants table needs "
            "participant_id and group"
        )
    table["subject"] = [subject_label(pid) for pid in table["participant_id"]]
    table["participant_id"] = "sub-" + table["subject"]
    dupes = sorted(table.loc[table["subject"].duplicated(), "participant_id"].unique())
    if dupes:
        raise NeurofusionError(f"{path}: participant_id not unique: {', '.join(dupes)}")
    empty = table.loc[table["group"].str.strip() == "", "participant_id"].tolist()
    if empty:
        raise NeurofusionError(f"{path}: no group for {', '.join(empty)}; fill the group column")
    groups = sorted(table["group"].unique())
    if need_two_groups and len(groups) != 2:
        raise NeurofusionError(
            f"{path}: classification needs exactly two groups, found {len(groups)}: {groups}; "
            "merge or remove rows so that two remain"
        )
    if positive_group is not None and positive_group not in groups:
        raise NeurofusionError(
            f"{path}: positive_group {positive_group!r} (config.yaml) is not one of the "
            f"groups {groups}; set positive_group to one of them"
        )
    return table.reset_index(drop=True)
