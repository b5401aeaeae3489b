"""Names of the group QC outputs."""

from __future__ import annotations

from pathlib import Path


def anat_qc_path(deriv_root: str | Path, subject: str) -> Path:
    """``<deriv_root>/sub-<id>/anat/sub-<id>_desc-anat_qc.json``: one subject's anatomical QC."""
    sub = f"sub-{subject.removeprefix('sub-')}"
    return Path(deriv_root) / sub / "anat" / f"{sub}_desc-anat_qc.json"


def group_qc_outputs(output_dir: str | Path, functional: bool = True) -> dict[str, Path]:
    """Every file the group QC step writes, under ``<output_dir>/qc/``.

    Parameters
    ----------
    output_dir : path
        ``output_dir`` of config.yaml.
    functional : bool
        Whether the cohort has functional data; without, only ``table`` and
        ``exclusions`` are written.

    Returns
    -------
    dict of str to Path
        ``table`` (``group_qc.tsv``: one row per subject), ``exclusions``
        (``exclusions.tsv``: ``participant_id``, ``reason``; header only when nobody is
        excluded), ``regions`` (``regions.tsv``: per region, how many subjects flag it and
        whether the cohort drops it), ``qcfc`` (``qcfc.tsv``: one row per edge),
        ``qcfc_json`` (summary) and ``qcfc_png`` (figure).
    """
    folder = Path(output_dir) / "qc"
    outputs = {"table": folder / "group_qc.tsv", "exclusions": folder / "exclusions.tsv"}
    if functional:
        outputs |= {
            "regions": folder / "regions.tsv",
            "qcfc": folder / "qcfc.tsv",
            "qcfc_json": folder / "qcfc.json",
            "qcfc_png": folder / "qcfc.png",
        }
    return outputs
