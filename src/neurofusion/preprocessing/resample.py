"""Resample every BOLD volume once, from native EPI space straight to MNI.

The static part of the chain (EPI reference -> T1w -> MNI) is composed by ANTs into one
displacement field on the output grid; each volume then needs only that field and its
own realignment transform, so the data are interpolated once, as fMRIPrep does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import ants
import nibabel as nib
import numpy as np


def compose_to_reference(
    reference: nib.Nifti1Image,
    moving_reference: nib.Nifti1Image,
    transforms: Sequence[str | Path],
    invert: Sequence[bool],
    prefix: str | Path,
) -> str:
    """Compose a chain of ANTs transforms into one displacement field on ``reference``'s grid.

    Parameters
    ----------
    reference : nibabel.Nifti1Image
        Output grid (e.g. MNI at 3 mm).
    moving_reference : nibabel.Nifti1Image
        An image in the space the chain maps into (the EPI reference volume).
    transforms : sequence of path
        ANTs transform list in ``ants.apply_transforms`` order: each output point is
        mapped through the list front to back.
    invert : sequence of bool
        ``whichtoinvert`` of ``ants.apply_transforms`` (linear transforms only).
    prefix : str or Path
        File prefix of the composed field.

    Returns
    -------
    str
        Path of the composed displacement field (NIfTI).
    """
    return ants.apply_transforms(
        fixed=ants.from_nibabel_nifti(reference),
        moving=ants.from_nibabel_nifti(moving_reference),
        transformlist=[str(t) for t in transforms],
        whichtoinvert=list(invert),
        compose=str(prefix),
    )


def resample_series(
    bold: nib.Nifti1Image,
    reference: nib.Nifti1Image,
    volume_transforms: Sequence[str | Path],
    static_field: str | Path,
    interpolator: str = "lanczosWindowedSinc",
) -> nib.Nifti1Image:
    """Resample each volume through its own transform and the shared static field.

    Parameters
    ----------
    bold : nibabel.Nifti1Image
        4D native BOLD, shape (x, y, z, t).
    reference : nibabel.Nifti1Image
        Output grid.
    volume_transforms : sequence of path
        One realignment transform per volume (reference volume -> volume ``n``).
    static_field : str or Path
        Field from :func:`compose_to_reference` (output grid -> EPI reference). Each
        output point goes through the field, then through the volume's transform.
    interpolator : str
        ANTs interpolator; windowed sinc keeps the signal sharp (fMRIPrep's default).

    Returns
    -------
    nibabel.Nifti1Image
        4D float32 on ``reference``'s grid, shape reference.shape + (t,).
    """
    data = np.asarray(bold.dataobj, dtype=np.float32)
    fixed = ants.from_nibabel_nifti(reference)
    out = np.empty((*reference.shape[:3], data.shape[-1]), dtype=np.float32)
    for index, transform in enumerate(volume_transforms):
        moving = ants.from_nibabel_nifti(nib.Nifti1Image(data[..., index], bold.affine))
        warped = ants.apply_transforms(
            fixed=fixed,
            moving=moving,
            transformlist=[str(static_field), str(transform)],
            interpolator=interpolator,
        )
        out[..., index] = warped.numpy()
    np.maximum(out, 0, out=out)  # sinc overshoot at the head's edge
    header = nib.Nifti1Header()
    header.set_data_dtype(np.float32)
    return nib.Nifti1Image(out, reference.affine, header)
