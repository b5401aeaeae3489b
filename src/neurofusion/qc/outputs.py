"""Names of the group QC outputs."""

from __future__ import annotations

from pathlib import Path


def group_qc_outputs(output_dir: str | Path) -> dict[str, Path]:
    """Every file the group QC step writes, under ``<output_dir>/qc/``.

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
    return {
        "table": folder / "group_qc.tsv",
        "exclusions": folder / "exclusions.tsv",
        "regions": folder / "regions.tsv",
        "qcfc": folder / "qcfc.tsv",
        "qcfc_json": folder / "qcfc.json",
        "qcfc_png": folder / "qcfc.png",
    }
