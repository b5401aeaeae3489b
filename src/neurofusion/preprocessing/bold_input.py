"""Checks on a raw BOLD run before preprocessing, and removal of the dummy scans."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from neurofusion.errors import InputError

#: Letters of BIDS ``SliceEncodingDirection`` and the voxel axis they name.
SLICE_AXES = {"i": 0, "j": 1, "k": 2}


def load_bold(
    subject: str,
    bold_path: str | Path,
    sidecar_path: str | Path,
    dummy_scans: int,
    min_volumes: int = 50,
) -> tuple[nib.Nifti1Image, dict]:
    """Read a BOLD run, check it, and drop the first ``dummy_scans`` volumes.

    Parameters
    ----------
    subject : str
        Participant label, for messages.
    bold_path, sidecar_path : str or Path
        The BIDS image and its JSON sidecar.
    dummy_scans : int
        Volumes acquired before steady state (DPARSF discards 10 by default).
    min_volumes : int
        Fewest volumes that may remain; shorter runs give unreliable connectivity.

    Returns
    -------
    image : nibabel.Nifti1Image
        4D float32, shape (x, y, z, t - dummy_scans), the original affine.
    sidecar : dict
        The sidecar, with ``RepetitionTime`` checked to be a positive number.

    Raises
    ------
    InputError
        3D image, missing or non-positive RepetitionTime, too few volumes, NaN or
        infinite voxels.
    """
    img = nib.load(bold_path)
    sidecar = json.loads(Path(sidecar_path).read_text())
    if img.ndim != 4 or img.shape[3] < 2:
        raise InputError(
            subject,
            bold_path,
            f"the BOLD image is {img.ndim}D {img.shape}, not a 4D time series",
            "point the participant's BOLD entry at the whole run (all volumes)",
        )
    tr = sidecar.get("RepetitionTime")
    if not isinstance(tr, int | float) or tr <= 0:
        raise InputError(
            subject,
            sidecar_path,
            f"RepetitionTime is {tr!r}; a positive number of seconds is needed",
            "add RepetitionTime (s) to the BOLD sidecar",
        )
    remaining = img.shape[3] - dummy_scans
    if remaining < min_volumes:
        raise InputError(
            subject,
            bold_path,
            f"only {remaining} volumes remain after dropping {dummy_scans} dummy scans "
            f"(at least {min_volumes} are needed)",
            "check the run is complete, or lower preprocessing.func.dummy_scans",
        )
    data = np.asarray(img.dataobj, dtype=np.float32)[..., dummy_scans:]
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).any(axis=3).sum())
        raise InputError(
            subject,
            bold_path,
            f"{bad} voxels hold NaN or infinite values",
            "re-convert the run from DICOM, or replace the non-finite voxels with 0",
        )
    header = img.header.copy()
    header.set_data_dtype(np.float32)
    return nib.Nifti1Image(data, img.affine, header), sidecar


def slice_axis(img: nib.Nifti1Image, sidecar: dict) -> int:
    """Voxel axis along which slices were acquired.

    The sidecar's ``SliceEncodingDirection`` wins; else the NIfTI header's ``slice_dim``;
    else the third axis (dcm2niix's output for axial, sagittal and coronal 2D EPI alike).
    """
    direction = sidecar.get("SliceEncodingDirection")
    if direction:
        return SLICE_AXES[direction.rstrip("-")]
    slice_dim = img.header.get_dim_info()[2]
    return 2 if slice_dim is None else int(slice_dim)
