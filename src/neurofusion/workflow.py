"""What the Snakefile needs from the configuration: the cohort and where inputs live."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from neurofusion.bids.layout import find_bids_image
from neurofusion.bids.participants import load_participants
from neurofusion.errors import NeurofusionError


def participants_table(config: Mapping) -> pd.DataFrame:
    """The checked participants table for any ``input.kind``.

    ``simulate`` derives the table from the ``simulate`` block; ``bids`` and
    ``derivatives`` read ``participants`` or, when unset, ``<input.path>/participants.tsv``;
    ``dicom`` needs ``participants``.

    Returns
    -------
    pandas.DataFrame
        Columns ``participant_id`` (``sub-<label>``), ``subject`` (label), ``group``, and
        whatever else the table holds.
    """
    kind = config["input"]["kind"]
    positive = config["positive_group"]
    if kind == "simulate":
        from neurofusion.simulate import cohort_participants, settings_from_config

        table = cohort_participants(settings_from_config(config["simulate"]))
        table["subject"] = table["participant_id"].str.removeprefix("sub-")
        return table
    return load_participants(participants_path(config), positive_group=positive)


def participants_path(config: Mapping) -> Path:
    """Where the participants table of ``dicom``, ``bids`` or ``derivatives`` input is.

    ``participants`` when set; else, for BIDS or derivatives input,
    ``<input.path>/participants.tsv``.
    """
    path = config.get("participants")
    if path is None and config["input"]["kind"] in ("bids", "derivatives"):
        path = Path(input_root(config)) / "participants.tsv"
    if path is None:
        raise NeurofusionError(
            "config.yaml: 'participants' is required for input.kind 'dicom'; point it at a "
            "TSV with participant_id and group columns"
        )
    return Path(path)


def input_root(config: Mapping) -> str:
    """``input.path``, required for ``dicom``, ``bids`` and ``derivatives`` input."""
    path = config["input"].get("path")
    if not path:
        raise NeurofusionError(
            f"config.yaml: input.path is required for input.kind {config['input']['kind']!r}; "
            "set it to the DICOM root (one folder per participant), the BIDS root or the "
            "derivatives root"
        )
    return str(path)


def dicom_folder(root: str | Path, subject: str) -> Path:
    """A participant's DICOM folder: ``<root>/sub-<label>`` or ``<root>/<label>``.

    Returns ``<root>/sub-<label>`` when neither exists; conversion then fails for this
    participant alone with a message that says where the folder should be.
    """
    root = Path(root)
    for name in (f"sub-{subject}", subject):
        if (root / name).is_dir():
            return root / name
    return root / f"sub-{subject}"


def bids_inputs(root: str | Path, subjects: Sequence[str], modalities: Sequence[str]) -> dict:
    """Locate every subject's images in a BIDS dataset.

    Returns
    -------
    dict
        ``{subject: {role: Path}}``.

    Raises
    ------
    NeurofusionError
        Listing every subject and role without an image, with the fix.
    """
    found: dict[str, dict[str, Path]] = {}
    missing = []
    for subject in subjects:
        found[subject] = {}
        for role in modalities:
            path = find_bids_image(root, subject, role)
            if path is None:
                missing.append(f"sub-{subject} ({role})")
            else:
                found[subject][role] = path
    if missing:
        raise NeurofusionError(
            f"BIDS dataset {root}: no image for {', '.join(missing)}; remove these "
            "participants from participants.tsv or set input.modalities to what they have"
        )
    return found
