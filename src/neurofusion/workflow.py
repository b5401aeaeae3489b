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


def bids_inputs(
    root: str | Path,
    subjects: Sequence[str],
    modalities: Sequence[str],
    missing_modality: str = "error",
) -> dict:
    """Locate every subject's images in a BIDS dataset.

    Parameters
    ----------
    root : path
        The BIDS root.
    subjects : sequence of str
        Participant labels (without ``sub-``).
    modalities : sequence of str
        ``input.modalities``.
    missing_modality : str
        ``input.missing_modality``: ``error`` (every subject must have every modality) or
        ``keep`` (a subject with a T1w but no BOLD is kept with its T1w alone).

    Returns
    -------
    dict
        ``{subject: {role: Path}}``, only the roles found.

    Raises
    ------
    NeurofusionError
        Listing every subject and role without an image, with the fix. Under ``keep``,
        only subjects with no image at all, or with a BOLD but no T1w (the BOLD is
        normalised through the subject's T1w), are errors.
    """
    found: dict[str, dict[str, Path]] = {}
    for subject in subjects:
        found[subject] = {}
        for role in modalities:
            path = find_bids_image(root, subject, role)
            if path is not None:
                found[subject][role] = path
    missing = [
        f"sub-{subject} ({role})"
        for subject, roles in found.items()
        for role in modalities
        if role not in roles
        and (missing_modality == "error" or not roles or (role == "T1w" and "bold" in roles))
    ]
    if missing:
        keep_hint = (
            "; or set input.missing_modality: keep to classify subjects with a T1w alone"
            if missing_modality == "error"
            else " (a BOLD run needs the subject's T1w)"
        )
        raise NeurofusionError(
            f"BIDS dataset {root}: no image for {', '.join(missing)}; remove these "
            "participants from participants.tsv or set input.modalities to what they have"
            + keep_hint
        )
    return found
