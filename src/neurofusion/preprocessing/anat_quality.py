"""Accuracy measures of the anatomical outputs (against truth, template or plausibility).

Used by the tests (simulated truth), the benchmarks and QC. All Dice coefficients are
computed on hard labels; "mean" Dice is the unweighted mean over regions.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np

from neurofusion import atlas, templates
from neurofusion.preprocessing.image_interfaces import TISSUES


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient ``2|A & B| / (|A| + |B|)`` of two boolean arrays (0 when both empty)."""
    total = np.count_nonzero(a) + np.count_nonzero(b)
    return 2.0 * np.count_nonzero(a & b) / total if total else 0.0


def mean_label_dice(a: np.ndarray, b: np.ndarray, labels) -> float:
    """Unweighted mean Dice over ``labels`` of two integer label images of equal shape."""
    return float(np.mean([dice(a == k, b == k) for k in labels]))


def hard_labels(maps: list[np.ndarray]) -> np.ndarray:
    """Hard tissue labels: 0 = background (``1 - sum``), k = argmax, 1-based in list order."""
    background = np.clip(1.0 - sum(maps), 0.0, 1.0)
    return np.argmax(np.stack([background, *maps]), axis=0)


def aal_on_template_grid(resolution: int = 2) -> np.ndarray:
    """The MNI AAL-116 labels (int) on the ``templates.mni_t1(resolution)`` grid, nearest."""
    from nilearn.image import resample_to_img

    img = resample_to_img(
        atlas.aal_image(),
        templates.mni_t1(resolution),
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )
    return np.asarray(img.dataobj).astype(int)


def normalisation_dice(outputs: Mapping[str, Path], native_labels: str | Path) -> float:
    """Mean AAL Dice of a subject's native AAL labels carried to MNI 2 mm vs the MNI AAL.

    Parameters
    ----------
    outputs : mapping
        :func:`~neurofusion.preprocessing.anat_outputs.anat_outputs` of the subject.
    native_labels : path
        AAL-116 label image on the subject's T1w grid (e.g. the simulator's truth).
    """
    from neurofusion.preprocessing.anat import to_mni

    carried = to_mni(native_labels, outputs, "GenericLabel")
    labels = [value for value, _ in atlas.aal_labels()]
    ours = np.rint(carried.get_fdata()).astype(int)
    return mean_label_dice(ours, aal_on_template_grid(2), labels)


def segmentation_dice(
    outputs: Mapping[str, Path], true_maps: Mapping[str, str | Path]
) -> dict[str, float]:
    """Dice of hard GM/WM/CSF labels (ours vs ``true_maps[tissue]``) on the native grid."""
    ours = hard_labels([nib.load(outputs[f"probseg_{t}"]).get_fdata() for t in TISSUES])
    true = hard_labels([nib.load(true_maps[t]).get_fdata() for t in TISSUES])
    return {t: dice(ours == k, true == k) for k, t in enumerate(TISSUES, start=1)}


def template_correlation(mni_t1w: str | Path) -> float:
    """Pearson r of a T1 in MNI (2 mm grid) with the template, inside the template brain."""
    priors = templates.mni_tissue_priors(2)
    brain = sum(p.get_fdata() for p in priors.values()) >= 0.5
    ours = nib.load(mni_t1w).get_fdata()[brain]
    return float(np.corrcoef(ours, templates.mni_t1(2).get_fdata()[brain])[0, 1])


def mask_litres(mask: str | Path) -> float:
    """Volume (litres) of the non-zero voxels of a mask."""
    img = nib.load(mask)
    voxel_ml = float(np.prod(img.header.get_zooms()[:3])) / 1000.0
    return np.count_nonzero(np.asarray(img.dataobj)) * voxel_ml / 1000.0
