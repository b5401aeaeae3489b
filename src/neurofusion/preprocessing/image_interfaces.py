"""Small nipype interfaces that prepare images: RAS reorientation and the template files."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)
from scipy import ndimage as ndi

from neurofusion import templates

#: Tissue classes, in the order of every ``probseg`` list of the anatomical workflow.
TISSUES = ("GM", "WM", "CSF")


class _ReorientInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3D NIfTI in any orientation")


class _ReorientOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the same voxels in RAS+ order, float32")


class Reorient(SimpleInterface):
    """Reorder the voxel axes to RAS+ (nibabel's closest canonical), without resampling.

    A 4D image with a single volume is accepted and squeezed to 3D; the data are written
    as float32 with ``scl_slope`` applied.
    """

    input_spec = _ReorientInputSpec
    output_spec = _ReorientOutputSpec

    def _run_interface(self, runtime):
        img = nib.load(self.inputs.in_file)
        if img.ndim == 4 and img.shape[3] == 1:
            img = img.slicer[..., 0]
        canonical = nib.as_closest_canonical(img)
        data = np.asarray(canonical.dataobj, dtype=np.float32)
        out = Path(runtime.cwd) / "t1w_ras.nii.gz"
        header = nib.Nifti1Header()
        header.set_xyzt_units("mm", "sec")
        nib.save(nib.Nifti1Image(data, canonical.affine, header), str(out))
        self._results["out_file"] = str(out)
        return runtime


def head_mask(
    data: np.ndarray, zooms_mm, smoothing_mm: float = 4.0, otsu_fraction: float = 0.3
) -> np.ndarray:
    """Foreground (head) mask of a 3D image; the rule of :class:`HeadMask`.

    Parameters
    ----------
    data : numpy.ndarray
        (ni, nj, nk) image.
    zooms_mm : sequence of float
        Voxel size (mm) along each axis.
    smoothing_mm : float
        FWHM (mm) of the Gaussian applied before thresholding.
    otsu_fraction : float
        Threshold, as a fraction of Otsu's threshold of the smoothed image.

    Returns
    -------
    numpy.ndarray
        (ni, nj, nk) bool: the largest connected component above threshold, holes filled.
    """
    from skimage.filters import threshold_otsu

    sigma = smoothing_mm / np.sqrt(8 * np.log(2)) / np.asarray(zooms_mm, dtype=float)
    smooth = ndi.gaussian_filter(np.asarray(data, dtype=np.float32), sigma)
    mask = smooth > otsu_fraction * threshold_otsu(smooth)
    components, count = ndi.label(mask)
    if count > 1:
        sizes = np.bincount(components.ravel())
        sizes[0] = 0
        mask = components == int(np.argmax(sizes))
    return ndi.binary_fill_holes(mask)


class _HeadMaskInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3D image")
    smoothing_mm = traits.Float(4.0, usedefault=True, desc="Gaussian FWHM before thresholding")
    otsu_fraction = traits.Float(0.3, usedefault=True, desc="threshold, fraction of Otsu's")


class _HeadMaskOutputSpec(TraitedSpec):
    mask_file = File(exists=True, desc="uint8 head (foreground) mask")


class HeadMask(SimpleInterface):
    """Foreground (head) mask: our own three-line rule, for N4 to ignore the air.

    The image is smoothed (Gaussian, ``smoothing_mm`` FWHM), thresholded at
    ``otsu_fraction`` times Otsu's threshold (Otsu's alone cuts dark skull and CSF),
    holes are filled and the largest connected component kept. N4's cost grows with the
    voxels it fits, and air carries no bias information, so the mask makes N4 both
    faster and better conditioned.
    """

    input_spec = _HeadMaskInputSpec
    output_spec = _HeadMaskOutputSpec

    def _run_interface(self, runtime):
        img = nib.load(self.inputs.in_file)
        mask = head_mask(
            img.get_fdata(dtype=np.float32),
            img.header.get_zooms()[:3],
            self.inputs.smoothing_mm,
            self.inputs.otsu_fraction,
        )
        out = Path(runtime.cwd) / "head_mask.nii.gz"
        nib.save(nib.Nifti1Image(mask.astype(np.uint8), img.affine, img.header), str(out))
        self._results["mask_file"] = str(out)
        return runtime


def save_downsampled(img: nib.Nifti1Image, spacing_mm: float, path: str | Path) -> str:
    """Write the registration copy of a 3D image: Gaussian anti-aliasing, then linear
    resampling.

    Axes finer than ``spacing_mm`` are smoothed with a Gaussian of FWHM
    ``sqrt(spacing_mm**2 - voxel**2)`` and resampled to ``spacing_mm``; coarser axes are
    left alone, and an image with no finer axis is written as it is. The transforms
    estimated on the copy live in world coordinates and apply unchanged to the
    full-resolution image.

    Parameters
    ----------
    img : nibabel.Nifti1Image
        3D image, voxel sizes in mm.
    spacing_mm : float
        Finest voxel size (mm) of the copy.
    path : str or Path
        Output file (NIfTI; float32 when resampled).

    Returns
    -------
    str
        ``path``.
    """
    import ants

    zooms = np.asarray(img.header.get_zooms()[:3], dtype=float)
    target = np.maximum(zooms, spacing_mm)
    if np.allclose(target, zooms):
        nib.save(img, str(path))
        return str(path)
    fwhm = np.sqrt(target**2 - zooms**2)
    sigma = fwhm / np.sqrt(8 * np.log(2)) / zooms
    smooth = ndi.gaussian_filter(img.get_fdata(dtype=np.float32), sigma)
    image = ants.from_nibabel_nifti(nib.Nifti1Image(smooth, img.affine, img.header))
    ants.image_write(ants.resample_image(image, tuple(target), False, 0), str(path))
    return str(path)


class _DownsampleInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3D image")
    spacing_mm = traits.Float(2.0, usedefault=True, desc="minimum voxel size of the copy")


class _DownsampleOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="the image on a grid no finer than spacing_mm")


class Downsample(SimpleInterface):
    """Registration copy of an image (:func:`save_downsampled`).

    The registrations run on the 2 mm template grid, so a 1 mm moving image only costs
    time (ANTs smooths and interpolates it at every level).
    """

    input_spec = _DownsampleInputSpec
    output_spec = _DownsampleOutputSpec

    def _run_interface(self, runtime):
        out = Path(runtime.cwd) / "downsampled.nii.gz"
        img = nib.load(self.inputs.in_file)
        self._results["out_file"] = save_downsampled(img, self.inputs.spacing_mm, out)
        return runtime


class _TemplateInputSpec(BaseInterfaceInputSpec):
    resolution = traits.Int(2, usedefault=True, desc="isotropic voxel size (mm)")
    mask_dilation_mm = traits.Float(
        4.0, usedefault=True, desc="margin of the registration metric mask (mm)"
    )


class _TemplateOutputSpec(TraitedSpec):
    t1w = File(exists=True, desc="skull-stripped MNI152NLin2009aSym T1, float32")
    brain_mask = File(exists=True, desc="template brain mask, uint8")
    brain_probability = File(exists=True, desc="GM + WM + CSF prior, float32 in [0, 1]")
    registration_mask = File(exists=True, desc="brain mask dilated by mask_dilation_mm")
    priors = traits.List(File(exists=True), desc="GM, WM, CSF prior maps, float32")


class TemplateFiles(SimpleInterface):
    """Write the nilearn-shipped MNI152 2009a template files the workflow needs.

    The brain mask is the template's tissue priors summed (``GM + WM + CSF >= 0.5``),
    which is, by construction of :func:`neurofusion.templates.mni_tissue_priors`, the
    template's own brain mask.
    """

    input_spec = _TemplateInputSpec
    output_spec = _TemplateOutputSpec

    def _run_interface(self, runtime):
        cwd = Path(runtime.cwd)
        resolution = self.inputs.resolution
        t1 = templates.mni_t1(resolution)
        priors = templates.mni_tissue_priors(resolution)
        header = nib.Nifti1Header()
        header.set_xyzt_units("mm", "sec")
        paths = {}
        for name in TISSUES:
            paths[name] = cwd / f"tpl_label-{name}_probseg.nii.gz"
            data = priors[name].get_fdata(dtype=np.float32)
            nib.save(nib.Nifti1Image(data, t1.affine, header), str(paths[name]))
        brain = sum(priors[name].get_fdata(dtype=np.float32) for name in TISSUES)
        np.clip(brain, 0, 1, out=brain)
        mask = brain >= 0.5
        dilation = max(1, round(self.inputs.mask_dilation_mm / resolution))
        registration_mask = ndi.binary_dilation(mask, iterations=dilation)
        outputs = {
            "t1w": (t1.get_fdata(dtype=np.float32), "tpl_T1w.nii.gz"),
            "brain_mask": (mask.astype(np.uint8), "tpl_desc-brain_mask.nii.gz"),
            "brain_probability": (brain, "tpl_label-brain_probseg.nii.gz"),
            "registration_mask": (registration_mask.astype(np.uint8), "tpl_desc-reg_mask.nii.gz"),
        }
        for key, (data, name) in outputs.items():
            nib.save(nib.Nifti1Image(data, t1.affine, header), str(cwd / name))
            self._results[key] = str(cwd / name)
        self._results["priors"] = [str(paths[name]) for name in TISSUES]
        return runtime
