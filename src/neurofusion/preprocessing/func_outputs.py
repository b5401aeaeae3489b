"""BIDS-derivatives names of the functional outputs, and writing them atomically."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from neurofusion.fileio import write_json
from neurofusion.preprocessing.anat_outputs import copy_file, subject_label, write_image
from neurofusion.templates import TEMPLATE_SPACE

#: Keys of :func:`func_outputs` that are NIfTI images with a JSON sidecar.
IMAGE_KEYS = ("clean_bold", "brain_mask", "boldref", "falff", "reho")
#: Voxel-wise maps, by key of :func:`func_outputs`: their ``stat-`` entity and sidecar.
BOLD_MAPS = {
    "falff": {
        "Description": (
            "fractional amplitude of low-frequency fluctuations: amplitude spectrum summed "
            "over the band / summed over all frequencies above 0 Hz (Zou et al. 2008), of "
            "the confound-regressed, smoothed, detrended BOLD before band-pass filtering"
        ),
        "Units": "arbitrary (ratio in [0, 1])",
    },
    "reho": {
        "Description": (
            "regional homogeneity: Kendall's W of each voxel's 3 x 3 x 3 neighbourhood "
            "(voxels inside the brain mask) of the clean BOLD (Zang et al. 2004)"
        ),
        "Units": "arbitrary (Kendall's W in [0, 1])",
    },
}
#: Figures, by key of :func:`func_outputs`, and their ``desc-`` entity.
FIGURES = {"motion_png": "motion", "carpet_png": "carpet", "registration_png": "registration"}


def func_outputs(deriv_root: str | Path, subject: str, resolution_mm: int = 3) -> dict[str, Path]:
    """Every file the functional workflow writes for one subject.

    Parameters
    ----------
    deriv_root : path
        Root of the BIDS-derivatives dataset (e.g. ``results/derivatives``).
    subject : str
        Participant label, with or without ``sub-``.
    resolution_mm : int
        Voxel size of the MNI output (the ``res-`` entity).

    Returns
    -------
    dict of str to Path
        ``clean_bold``, ``brain_mask``, ``boldref`` (MNI, with ``<key>_json`` sidecars),
        ``falff`` and ``reho`` (voxel-wise maps of :data:`BOLD_MAPS`, float32, with
        ``_json`` sidecars), ``confounds`` and ``confounds_json``, ``qc`` (the subject's
        QC JSON), the figures of :data:`FIGURES`, ``boldref2t1w_xfm`` (ITK rigid transform taking
        T1w points to points of the first retained volume, which is the realignment
        reference), and ``provenance``.
    """
    sub = f"sub-{subject_label(subject)}"
    func = Path(deriv_root) / sub / "func"
    figures = Path(deriv_root) / sub / "figures"
    space = f"{sub}_task-rest_space-{TEMPLATE_SPACE}_res-{resolution_mm}"
    out = {
        "clean_bold": func / f"{space}_desc-clean_bold.nii.gz",
        "brain_mask": func / f"{space}_desc-brain_mask.nii.gz",
        "boldref": func / f"{space}_boldref.nii.gz",
        **{key: func / f"{space}_stat-{key}_boldmap.nii.gz" for key in BOLD_MAPS},
        "confounds": func / f"{sub}_task-rest_desc-confounds_timeseries.tsv",
        "confounds_json": func / f"{sub}_task-rest_desc-confounds_timeseries.json",
        "boldref2t1w_xfm": func / f"{sub}_task-rest_from-boldref_to-T1w_mode-image_xfm.mat",
        "qc": Path(deriv_root) / sub / f"{sub}_qc.json",
        "provenance": func / f"{sub}_task-rest_desc-func_provenance.json",
    }
    for key in IMAGE_KEYS:
        out[f"{key}_json"] = out[key].with_name(out[key].name.replace(".nii.gz", ".json"))
    for key, desc in FIGURES.items():
        out[key] = figures / f"{sub}_task-rest_desc-{desc}_bold.png"
    return out


#: Units and meaning of the confounds columns (BIDS column descriptions).
CONFOUND_DESCRIPTIONS = {
    "trans_x": "Realignment translation along x (mm), volume relative to the first",
    "rot_x": "Realignment rotation about x (radians), SPM convention Rx @ Ry @ Rz",
    "framewise_displacement": "Power et al. (2012) FD (mm), rotations on a 50 mm sphere",
    "framewise_displacement_jenkinson": "Jenkinson (2002) relative RMS displacement (mm)",
    "dvars": "RMS of the temporal difference of brain voxels (signal units)",
    "std_dvars": "DVARS standardised by its expected value (Nichols 2013)",
    "white_matter": "Mean signal in the eroded white-matter mask",
    "csf": "Mean signal in the eroded CSF mask",
    "global_signal": "Mean signal in the brain mask",
    "a_comp_cor_00": "Anatomical CompCor: principal components of eroded WM + CSF",
}


def write_func_outputs(
    results: Mapping[str, Any],
    outputs: Mapping[str, Path],
    sources: list[str],
    settings: Any,
) -> None:
    """Copy the workflow's results to their derivative names, with sidecars.

    Parameters
    ----------
    results : mapping
        ``outputnode`` fields of :func:`~neurofusion.preprocessing.func.init_func_wf`.
    outputs : mapping
        :func:`func_outputs` of the subject.
    sources : list of str
        The raw BOLD and the anatomical derivatives it used.
    settings : FuncSettings
        The parameters (written into the clean BOLD's sidecar).
    """
    space = {"SpatialReference": TEMPLATE_SPACE, "Sources": sources}
    write_image(results["clean_bold"], outputs["clean_bold"])
    write_json(
        outputs["clean_bold_json"],
        {
            **space,
            "RepetitionTime": results["tr"],
            "SkullStripped": True,
            "TaskName": "rest",
            "VolumesKept": results["kept_volumes"],
            "Denoising": dataclasses.asdict(settings),
        },
    )
    write_image(results["brain_mask"], outputs["brain_mask"], mask=True)
    write_json(outputs["brain_mask_json"], {**space, "Type": "Brain"})
    write_image(results["boldref"], outputs["boldref"])
    write_json(outputs["boldref_json"], {**space, "Description": "temporal mean of the BOLD"})
    for key, meta in BOLD_MAPS.items():
        write_image(results[key], outputs[key])
        write_json(
            outputs[f"{key}_json"],
            {**space, **meta, "BandHz": list(settings.band_hz), "FWHMmm": settings.fwhm_mm},
        )
    copy_file(results["confounds"], outputs["confounds"])
    columns = pd.read_csv(outputs["confounds"], sep="\t", nrows=0).columns
    write_json(
        outputs["confounds_json"],
        {
            column: {"Description": CONFOUND_DESCRIPTIONS[column]}
            for column in columns
            if column in CONFOUND_DESCRIPTIONS
        },
    )
    copy_file(results["qc"], outputs["qc"])
    copy_file(results["boldref2t1w_xfm"][0], outputs["boldref2t1w_xfm"])
    for key in FIGURES:
        copy_file(results[key], outputs[key])
