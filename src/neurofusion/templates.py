"""The MNI152 template and tissue priors that ship inside nilearn (nothing is downloaded).

nilearn packages the ICBM152 2009 *a* symmetric nonlinear template
(``mni_icbm152_*_tal_nlin_sym_09a``). Its TemplateFlow name is therefore
``MNI152NLin2009aSym``, not the ``2009cSym`` that fMRIPrep fetches from TemplateFlow;
neurofusion labels its outputs with the name of the template it really used.
"""

from __future__ import annotations

from functools import lru_cache

import nibabel as nib
import numpy as np

#: TemplateFlow identifier of the template neurofusion normalises to.
TEMPLATE_SPACE = "MNI152NLin2009aSym"


@lru_cache(maxsize=4)
def mni_t1(resolution: int = 1) -> nib.Nifti1Image:
    """Skull-stripped MNI152 T1 template.

    Parameters
    ----------
    resolution : int
        Isotropic voxel size in mm (1 is the native 197 x 233 x 189 grid).

    Returns
    -------
    nibabel.Nifti1Image
        3D image, float32 intensities.
    """
    from nilearn.datasets import load_mni152_template

    img = load_mni152_template(resolution=resolution)
    return nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine)


@lru_cache(maxsize=4)
def mni_tissue_priors(resolution: int = 1) -> dict[str, nib.Nifti1Image]:
    """Grey-matter, white-matter and CSF probability maps on the template grid.

    nilearn ships GM and WM priors; CSF is what remains of the template's brain
    mask, ``clip(mask - GM - WM, 0, 1)``.

    Parameters
    ----------
    resolution : int
        Isotropic voxel size in mm.

    Returns
    -------
    dict of str to nibabel.Nifti1Image
        Keys ``"GM"``, ``"WM"``, ``"CSF"``; float32 probabilities in [0, 1] that sum
        to at most 1 in every voxel.
    """
    from nilearn.datasets import (
        load_mni152_brain_mask,
        load_mni152_gm_template,
        load_mni152_wm_template,
    )

    gm_img = load_mni152_gm_template(resolution=resolution)
    gm = np.clip(np.asarray(gm_img.dataobj, dtype=np.float32), 0, 1)
    wm = np.clip(
        np.asarray(load_mni152_wm_template(resolution=resolution).dataobj, dtype=np.float32), 0, 1
    )
    total = gm + wm
    over = total > 1
    gm[over] /= total[over]
    wm[over] /= total[over]
    mask = np.asarray(load_mni152_brain_mask(resolution=resolution).dataobj, dtype=np.float32) > 0
    csf = np.clip(mask.astype(np.float32) - gm - wm, 0, 1)
    return {
        name: nib.Nifti1Image(data, gm_img.affine)
        for name, data in (("GM", gm), ("WM", wm), ("CSF", csf))
    }


@lru_cache(maxsize=4)
def mni_brain_mask(resolution: int = 1) -> nib.Nifti1Image:
    """The template's brain mask (uint8) on the ``resolution`` mm grid of :func:`mni_t1`."""
    from nilearn.datasets import load_mni152_brain_mask

    img = load_mni152_brain_mask(resolution=resolution)
    return nib.Nifti1Image((np.asarray(img.dataobj) > 0).astype(np.uint8), img.affine)
