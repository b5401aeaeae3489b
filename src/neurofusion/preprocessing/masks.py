"""Masks of the functional workflow on the output (MNI) grid."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import ants
import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

#: Tissue probability above which a native voxel counts as pure WM or CSF.
PURE_TISSUE = 0.9
#: Erosion depth (mm) of the WM and CSF masks in native T1w space, so that their mean
#: signals are not contaminated by grey matter (CSF spaces are thin: less erosion).
EROSION_MM = {"wm": 3.0, "csf": 1.0}
#: EPI coverage: output voxels whose mean BOLD is above this fraction of the brain's
#: 98th percentile were inside the field of view.
COVERAGE_FRACTION = 0.1
#: Margin (mm) around the subject's brain within which BOLD is resampled to the output grid
#: (:func:`sampling_region`): every mask here lies inside the brain, and the margin keeps
#: the brain's edge visible in the mean BOLD and its registration overlay.
SAMPLING_MARGIN_MM = 10.0


def _to_target(img, target, transforms, invert, interpolator="linear") -> np.ndarray:
    warped = ants.apply_transforms(
        fixed=ants.from_nibabel_nifti(target),
        moving=ants.from_nibabel_nifti(img),
        transformlist=[str(t) for t in transforms],
        whichtoinvert=list(invert),
        interpolator=interpolator,
    )
    return warped.numpy()


def erode_mm(mask: np.ndarray, zooms: Sequence[float], depth_mm: float) -> np.ndarray:
    """Keep the voxels at least ``depth_mm`` inside ``mask`` (Euclidean, in mm)."""
    if depth_mm <= 0:
        return mask
    return ndi.distance_transform_edt(mask, sampling=zooms) > depth_mm


def carried_brain(
    target: nib.Nifti1Image,
    t1w_mask: nib.Nifti1Image,
    transforms: Sequence[str | Path],
    invert: Sequence[bool],
) -> np.ndarray:
    """The native T1w brain mask on ``target``'s grid (linear, then >= 0.5); 3D bool."""
    return _to_target(t1w_mask, target, transforms, invert) >= 0.5


def sampling_region(
    target: nib.Nifti1Image,
    t1w_mask: nib.Nifti1Image,
    transforms: Sequence[str | Path],
    invert: Sequence[bool],
    margin_mm: float = SAMPLING_MARGIN_MM,
) -> nib.Nifti1Image:
    """The output voxels worth resampling: the subject's brain plus ``margin_mm``.

    The brain is :func:`carried_brain`, as in :func:`bold_masks`, so every mask of the
    functional workflow lies inside.
    On the 3 mm MNI grid this is about a third of the grid (template brain: 21 %).

    Parameters
    ----------
    target : nibabel.Nifti1Image
        Output grid (MNI at 3 mm).
    t1w_mask : nibabel.Nifti1Image
        Native T1w brain mask.
    transforms, invert : sequence
        ANTs transforms (and ``whichtoinvert``) taking native T1w to the target grid.
    margin_mm : float
        Dilation (mm, Euclidean) of the carried brain mask.

    Returns
    -------
    nibabel.Nifti1Image
        uint8 mask on ``target``'s grid.
    """
    brain = carried_brain(target, t1w_mask, transforms, invert)
    zooms = target.header.get_zooms()[:3]
    region = ndi.distance_transform_edt(~brain, sampling=zooms) <= margin_mm
    return nib.Nifti1Image(region.astype(np.uint8), target.affine)


def bold_masks(
    target: nib.Nifti1Image,
    boldref: nib.Nifti1Image,
    t1w_mask: nib.Nifti1Image,
    probseg: Sequence[nib.Nifti1Image],
    transforms: Sequence[str | Path],
    invert: Sequence[bool],
) -> dict[str, nib.Nifti1Image]:
    """Brain, GM, eroded WM and CSF, and CompCor masks on ``target``'s grid.

    Parameters
    ----------
    target : nibabel.Nifti1Image
        Output grid (MNI at 3 mm).
    boldref : nibabel.Nifti1Image
        Mean BOLD on that grid (voxels outside the EPI field of view are ~0).
    t1w_mask : nibabel.Nifti1Image
        Native T1w brain mask.
    probseg : sequence of nibabel.Nifti1Image
        Native GM, WM, CSF probability maps.
    transforms, invert : sequence
        ANTs transforms (and ``whichtoinvert``) taking native T1w to the target grid.

    Returns
    -------
    dict of str to nibabel.Nifti1Image
        uint8 masks ``brain``, ``gm``, ``wm``, ``csf``, ``compcor``. WM and CSF fall back to
        their un-eroded masks when erosion leaves no voxel (tiny images).
    """
    zooms = t1w_mask.header.get_zooms()[:3]
    brain = carried_brain(target, t1w_mask, transforms, invert)
    ref = np.asarray(boldref.dataobj, dtype=np.float32)
    if brain.any():
        brain &= ref > COVERAGE_FRACTION * np.percentile(ref[brain], 98)
    wm_prob, csf_prob = (np.asarray(p.dataobj, dtype=np.float32) for p in probseg[1:])
    gm = brain & (_to_target(probseg[0], target, transforms, invert) >= 0.5)
    out = {"brain": brain, "gm": gm}
    for name, prob in (("wm", wm_prob), ("csf", csf_prob)):
        pure = prob >= PURE_TISSUE
        eroded = erode_mm(pure, zooms, EROSION_MM[name])
        native = eroded if eroded.any() else pure
        img = nib.Nifti1Image(native.astype(np.float32), t1w_mask.affine)
        out[name] = brain & (_to_target(img, target, transforms, invert) >= 0.5)
    out["compcor"] = out["wm"] | out["csf"]
    return {
        name: nib.Nifti1Image(mask.astype(np.uint8), target.affine) for name, mask in out.items()
    }
