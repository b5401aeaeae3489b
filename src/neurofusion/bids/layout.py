"""BIDS file names of the raw images neurofusion reads and writes."""

from __future__ import annotations

from pathlib import Path

#: For each role: (BIDS datatype, the entities between ``sub-<label>_`` and the suffix).
ROLE_ENTITIES = {"T1w": ("anat", ""), "bold": ("func", "task-rest_")}


def raw_image_path(root: str | Path, subject: str, role: str, ext: str = ".nii.gz") -> Path:
    """Path of a subject's raw image (or its sidecar with ``ext=".json"``).

    Parameters
    ----------
    root : str or Path
        BIDS root.
    subject : str
        Participant label without ``sub-``.
    role : {"T1w", "bold"}
    ext : str
        File extension including the dot.

    Returns
    -------
    Path
        e.g. ``root/sub-01/func/sub-01_task-rest_bold.nii.gz``.
    """
    datatype, entities = ROLE_ENTITIES[role]
    return Path(root) / f"sub-{subject}" / datatype / f"sub-{subject}_{entities}{role}{ext}"


def find_bids_image(root: str | Path, subject: str, role: str) -> Path | None:
    """Locate a subject's T1w or resting BOLD image in an existing BIDS dataset.

    Looks for ``sub-<label>/[ses-*/]<datatype>/sub-<label>_*<suffix>.nii[.gz]``; for BOLD
    only files with ``task-rest`` in their name. When several runs or sessions exist,
    the first in sorted order is taken (``run-1`` before ``run-2``, ``ses-1`` before
    ``ses-2``). pybids is not used: these two globs are all the workflow needs and
    they keep start-up fast on large datasets.

    Returns
    -------
    Path or None
        None when the subject has no such image.
    """
    datatype, entities = ROLE_ENTITIES[role]
    subject_dir = Path(root) / f"sub-{subject}"
    hits: list[Path] = []
    for pattern in (f"{datatype}/*{role}.nii*", f"ses-*/{datatype}/*{role}.nii*"):
        hits += [p for p in subject_dir.glob(pattern) if entities.rstrip("_") in p.name]
    return sorted(hits)[0] if hits else None
