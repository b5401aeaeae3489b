"""BIDS-derivatives names of the anatomical outputs, and writing them atomically.

Transform files follow fMRIPrep's naming: ``from-T1w_to-<space>_mode-image`` is what
*resamples a T1w image into* ``<space>``. In ITK terms the affine ``.mat`` maps template
points to T1w points; see :mod:`neurofusion.preprocessing.ants_interfaces`.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from neurofusion.fileio import atomic_path, write_json
from neurofusion.preprocessing.image_interfaces import TISSUES
from neurofusion.templates import TEMPLATE_SPACE

#: Resolution (mm) of the MNI outputs; the 99 x 117 x 95 grid of ``templates.mni_t1(2)``.
MNI_RESOLUTION = 2
#: Keys of :func:`anat_outputs` that are masks (written as uint8, not float32).
MASK_KEYS = ("brain_mask", "mni_mask")


def subject_label(subject: str) -> str:
    """``"01"`` or ``"sub-01"`` -> ``"01"``."""
    return subject.removeprefix("sub-")


def image_keys() -> tuple[str, ...]:
    """Keys of :func:`anat_outputs` that are NIfTI images with a JSON sidecar."""
    native = ("t1w_preproc", "brain_mask", *(f"probseg_{t}" for t in TISSUES))
    mni = ("mni_t1w", "mni_mask", *(f"mni_probseg_{t}" for t in TISSUES))
    return native + mni


def anat_outputs(deriv_root: str | Path, subject: str) -> dict[str, Path]:
    """Every file the anatomical workflow writes for one subject.

    Parameters
    ----------
    deriv_root : path
        Root of the BIDS-derivatives dataset (e.g. ``results/derivatives``).
    subject : str
        Participant label, with or without ``sub-``.

    Returns
    -------
    dict of str to Path
        Keys: ``t1w_preproc``, ``brain_mask``, ``probseg_{GM,WM,CSF}`` (native T1w grid,
        RAS); ``mni_t1w``, ``mni_mask``, ``mni_probseg_{GM,WM,CSF}`` (MNI152NLin2009aSym,
        2 mm); a ``<key>_json`` sidecar for each of those images; ``t1w2mni_affine``
        (ITK ``.mat``), ``t1w2mni_warp`` and ``mni2t1w_warp`` (ITK displacement fields,
        NIfTI); ``overlay_png`` (figures/) and ``provenance`` (JSON).
    """
    sub = f"sub-{subject_label(subject)}"
    anat = Path(deriv_root) / sub / "anat"
    figures = Path(deriv_root) / sub / "figures"
    mni = f"space-{TEMPLATE_SPACE}_res-{MNI_RESOLUTION}"
    out = {
        "t1w_preproc": anat / f"{sub}_desc-preproc_T1w.nii.gz",
        "brain_mask": anat / f"{sub}_desc-brain_mask.nii.gz",
        "mni_t1w": anat / f"{sub}_{mni}_desc-preproc_T1w.nii.gz",
        "mni_mask": anat / f"{sub}_{mni}_desc-brain_mask.nii.gz",
    }
    for tissue in TISSUES:
        out[f"probseg_{tissue}"] = anat / f"{sub}_label-{tissue}_probseg.nii.gz"
        out[f"mni_probseg_{tissue}"] = anat / f"{sub}_{mni}_label-{tissue}_probseg.nii.gz"
    for key in image_keys():
        out[f"{key}_json"] = out[key].with_name(out[key].name.replace(".nii.gz", ".json"))
    out["t1w2mni_affine"] = anat / f"{sub}_from-T1w_to-{TEMPLATE_SPACE}_mode-image_xfm.mat"
    out["t1w2mni_warp"] = (
        anat / f"{sub}_from-T1w_to-{TEMPLATE_SPACE}_mode-image_desc-warp_xfm.nii.gz"
    )
    out["mni2t1w_warp"] = (
        anat / f"{sub}_from-{TEMPLATE_SPACE}_to-T1w_mode-image_desc-warp_xfm.nii.gz"
    )
    out["overlay_png"] = figures / f"{sub}_desc-registration_T1w.png"
    out["provenance"] = anat / f"{sub}_desc-anat_provenance.json"
    return out


def t1w2mni_transforms(outputs: Mapping[str, Path]) -> list[Path]:
    """``transformlist`` that resamples a native T1w-space image into MNI (warp, affine)."""
    return [outputs["t1w2mni_warp"], outputs["t1w2mni_affine"]]


def mni2t1w_transforms(outputs: Mapping[str, Path]) -> tuple[list[Path], list[bool]]:
    """``transformlist`` and ``whichtoinvert`` that resample an MNI image into T1w space."""
    return [outputs["t1w2mni_affine"], outputs["mni2t1w_warp"]], [True, False]


def write_image(src: str | Path, dest: Path, mask: bool = False) -> Path:
    """Copy a NIfTI atomically as float32 (``mask``: uint8 0/1)."""
    img = nib.load(str(src))
    if mask:
        data = (np.asarray(img.dataobj) > 0.5).astype(np.uint8)
    else:
        data = np.asarray(img.dataobj, dtype=np.float32)
    header = img.header.copy()
    header.set_data_dtype(data.dtype)
    header.set_xyzt_units("mm", "sec")
    with atomic_path(dest) as tmp:
        nib.save(nib.Nifti1Image(data, img.affine, header), str(tmp))
    return dest


def copy_file(src: str | Path, dest: Path) -> Path:
    """Copy a file atomically."""
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)
    return dest


def sidecar(key: str, source: str) -> dict[str, Any]:
    """BIDS-derivatives sidecar of one image key of :func:`anat_outputs`.

    Parameters
    ----------
    key : str
        One of :func:`image_keys`.
    source : str
        The raw T1w image, as a BIDS URI where possible.
    """
    meta: dict[str, Any] = {"Sources": [source]}
    if key in MASK_KEYS:
        meta["Type"] = "Brain"
    elif key.endswith("t1w") or key == "t1w_preproc":
        meta["SkullStripped"] = False
    if key.startswith("mni_"):
        meta["SpatialReference"] = TEMPLATE_SPACE
        meta["Resolution"] = (
            f"{MNI_RESOLUTION} mm isotropic: the 99 x 117 x 95 grid of nilearn's "
            "ICBM152 2009a symmetric template"
        )
    return meta


def bids_uri(path: str | Path) -> str:
    """``bids:raw:sub-X/anat/file`` for a file inside a BIDS tree, else the absolute path."""
    path = Path(path).resolve()
    parts = path.parts
    if len(parts) >= 3 and parts[-3].startswith("sub-") and parts[-2] == "anat":
        return "bids:raw:" + "/".join(parts[-3:])
    return str(path)


def write_anat_outputs(
    results: Mapping[str, Any], outputs: Mapping[str, Path], source: str
) -> None:
    """Copy the workflow's results to their derivative names, with sidecars.

    Parameters
    ----------
    results : mapping
        ``outputnode`` fields of :func:`~neurofusion.preprocessing.anat.init_anat_wf`.
    outputs : mapping
        :func:`anat_outputs` of the subject.
    source : str
        The raw T1w (BIDS URI) named in every sidecar.
    """
    files = {
        "t1w_preproc": results["t1w_preproc"],
        "brain_mask": results["brain_mask"],
        "mni_t1w": results["mni_t1w"],
        "mni_mask": results["mni_mask"],
    }
    for tissue, native, mni in zip(
        TISSUES, results["probseg"], results["mni_probseg"], strict=True
    ):
        files[f"probseg_{tissue}"] = native
        files[f"mni_probseg_{tissue}"] = mni
    for key, src in files.items():
        write_image(src, outputs[key], mask=key in MASK_KEYS)
        write_json(outputs[f"{key}_json"], sidecar(key, source))
    warp, affine = results["t1w2mni_xfm"]
    copy_file(affine, outputs["t1w2mni_affine"])
    copy_file(warp, outputs["t1w2mni_warp"])
    copy_file(results["mni2t1w_xfm"][1], outputs["mni2t1w_warp"])
    copy_file(results["overlay_png"], outputs["overlay_png"])


class _DerivativesInputSpec(BaseInterfaceInputSpec):
    deriv_root = traits.Str(mandatory=True, desc="BIDS-derivatives root")
    subject = traits.Str(mandatory=True, desc="participant label")
    source = traits.Str(mandatory=True, desc="raw T1w, BIDS URI")
    t1w_preproc = File(exists=True, mandatory=True)
    brain_mask = File(exists=True, mandatory=True)
    probseg = InputMultiObject(File(exists=True), mandatory=True)
    mni_t1w = File(exists=True, mandatory=True)
    mni_mask = File(exists=True, mandatory=True)
    mni_probseg = InputMultiObject(File(exists=True), mandatory=True)
    t1w2mni_xfm = InputMultiObject(File(exists=True), mandatory=True)
    mni2t1w_xfm = InputMultiObject(File(exists=True), mandatory=True)
    overlay_png = File(exists=True, mandatory=True)


class _DerivativesOutputSpec(TraitedSpec):
    out_files = traits.Dict(traits.Str, traits.Str, desc="key -> written path")


class AnatDerivatives(SimpleInterface):
    """Data sink: write the anatomical results under their BIDS-derivatives names.

    Run the node with ``overwrite=True`` so that deleted derivatives are written again
    even when nipype's cache says the node is up to date.
    """

    input_spec = _DerivativesInputSpec
    output_spec = _DerivativesOutputSpec

    def _run_interface(self, runtime):
        outputs = anat_outputs(self.inputs.deriv_root, self.inputs.subject)
        write_anat_outputs(self.inputs.get(), outputs, self.inputs.source)
        self._results["out_files"] = {key: str(path) for key, path in outputs.items()}
        return runtime
