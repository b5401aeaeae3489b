"""Anatomical preprocessing: T1w -> bias-corrected, brain-extracted, segmented, in MNI.

The workflow (:func:`init_anat_wf`), in the style of fMRIPrep's ``init_anat_preproc_wf``:

1. reorient to RAS+ (no resampling);
2. N4 bias-field correction (field fitted on a ~6 mm grid, inside a head mask);
3. brain extraction, GM/WM/CSF segmentation and SyN normalisation to the nilearn-shipped
   MNI152NLin2009aSym template (:mod:`~neurofusion.preprocessing.brain_extraction`); the
   registrations see a copy of the T1 downsampled to 2 mm (the template's grid), on
   which SyN stops at 4 mm, or at 2 mm with ``syn_resolution_mm=2``; the segmentation and
   every native output keep the acquired grid;
4. the bias-corrected T1 (windowed sinc), brain mask (label interpolation) and tissue
   maps (linear) resampled once onto the 2 mm template grid (99 x 117 x 95);
5. a registration overlay (PNG).

Every step is a nipype interface; ANTs runs in process through antspyx
(:mod:`~neurofusion.preprocessing.ants_interfaces`, which also documents the transform
conventions).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from neurofusion import templates
from neurofusion.errors import InputError, NeurofusionError
from neurofusion.preprocessing.anat_outputs import (
    MNI_RESOLUTION,
    AnatDerivatives,
    anat_outputs,
    bids_uri,
    t1w2mni_transforms,
)
from neurofusion.preprocessing.ants_interfaces import (
    ApplyTransforms,
    N4BiasFieldCorrection,
    apply_transforms,
)
from neurofusion.preprocessing.brain_extraction import (
    AFFINE_STAGES,
    BAND_MM,
    DEFAULT_SYN_RESOLUTION_MM,
    HEAD_MARGIN_MM,
    RIM_MM,
    TISSUE_FLOOR,
    init_brain_extraction_wf,
    syn_stages,
)
from neurofusion.preprocessing.image_interfaces import (
    Downsample,
    HeadMask,
    Reorient,
    TemplateFiles,
)
from neurofusion.preprocessing.reports import RegistrationOverlay
from neurofusion.preprocessing.threads import limit_threads
from neurofusion.provenance import write_provenance

LOGGER = logging.getLogger("neurofusion.preprocessing.anat")

#: Fields of the ``outputnode`` of :func:`init_anat_wf`.
OUTPUT_FIELDS = (
    "t1w_preproc",
    "brain_mask",
    "probseg",
    "mni_t1w",
    "mni_mask",
    "mni_probseg",
    "t1w2mni_xfm",
    "mni2t1w_xfm",
    "mni2t1w_invert",
    "overlay_png",
)

#: ``outputnode`` fields the data sink needs (the inverse flags are implied by the files).
SINK_FIELDS = tuple(f for f in OUTPUT_FIELDS if f != "mni2t1w_invert")


class WorkflowError(NeurofusionError):
    """A nipype node of a subject's workflow crashed; the message holds the crash files."""


def init_anat_wf(
    name: str = "anat_wf",
    *,
    seed: int = 0,
    omp_nthreads: int = 1,
    syn_resolution_mm: int = DEFAULT_SYN_RESOLUTION_MM,
) -> pe.Workflow:
    """Build the anatomical workflow of one subject.

    Parameters
    ----------
    name : str
        Workflow name (its folder under the nipype working directory).
    seed : int
        Random seed of every ANTs registration (metric sampling).
    omp_nthreads : int
        ITK threads of Atropos (a child process); both registrations use one (see
        :data:`~neurofusion.preprocessing.brain_extraction.AFFINE_STAGES`) and the other
        ANTs nodes run in process with the threads set by
        :func:`~neurofusion.preprocessing.threads.limit_threads`. Also tells nipype's
        scheduler how many threads the heavy nodes take.
    syn_resolution_mm : int
        Finest grid (mm) of the SyN normalisation: 4, or 2 for a closer fit of real cortex at
        about six times the registration time
        (:func:`~neurofusion.preprocessing.brain_extraction.syn_stages`).

    Returns
    -------
    nipype.pipeline.engine.Workflow
        ``inputnode.t1w``: a 3D T1w NIfTI. ``outputnode`` fields:

        - ``t1w_preproc``: bias-corrected T1w, native grid, RAS+, float32;
        - ``brain_mask``: native brain mask;
        - ``probseg``: [GM, WM, CSF] native probability maps (zero outside the mask);
        - ``mni_t1w``, ``mni_mask``, ``mni_probseg``: the same in MNI152NLin2009aSym at
          2 mm (99 x 117 x 95);
        - ``t1w2mni_xfm``: [warp, affine], the ``transformlist`` that resamples a native
          image into MNI (``fixed`` = MNI grid, ``moving`` = native image);
        - ``mni2t1w_xfm``: [affine, inverse warp] and ``mni2t1w_invert`` [True, False],
          ``transformlist`` and ``whichtoinvert`` for MNI -> native;
        - ``overlay_png``: registration overlay.
    """
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["t1w"]), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=list(OUTPUT_FIELDS)), name="outputnode")
    reorient = pe.Node(Reorient(), name="reorient")
    head_mask = pe.Node(HeadMask(), name="head_mask")
    n4 = pe.Node(N4BiasFieldCorrection(), name="n4")
    registration_copy = pe.Node(Downsample(spacing_mm=MNI_RESOLUTION), name="registration_copy")
    template = pe.Node(TemplateFiles(resolution=MNI_RESOLUTION), name="template")
    brain_wf = init_brain_extraction_wf(
        seed=seed, omp_nthreads=omp_nthreads, syn_resolution_mm=syn_resolution_mm
    )
    mni_t1w = pe.Node(
        ApplyTransforms(interpolation="LanczosWindowedSinc", clip_negative=True),
        name="mni_t1w",
        n_procs=omp_nthreads,
    )
    mni_mask = pe.Node(ApplyTransforms(interpolation="GenericLabel"), name="mni_mask")
    mni_probseg = pe.MapNode(
        ApplyTransforms(interpolation="Linear"), iterfield=["input_image"], name="mni_probseg"
    )
    wm_prior = pe.Node(niu.Select(index=[1]), name="wm_prior")
    overlay = pe.Node(RegistrationOverlay(title="T1w in MNI152NLin2009aSym"), name="overlay")

    # fmt: off
    wf.connect([
        (inputnode, reorient, [("t1w", "in_file")]),
        (reorient, head_mask, [("out_file", "in_file")]),
        (reorient, n4, [("out_file", "in_file")]),
        (head_mask, n4, [("mask_file", "mask_file")]),
        (n4, brain_wf, [("out_file", "inputnode.t1w")]),
        (n4, registration_copy, [("out_file", "in_file")]),
        (registration_copy, brain_wf, [("out_file", "inputnode.t1w_registration")]),
        (template, brain_wf, [("t1w", "inputnode.template"),
                              ("brain_probability", "inputnode.template_probability"),
                              ("registration_mask", "inputnode.template_registration_mask"),
                              ("priors", "inputnode.template_priors")]),
        (n4, mni_t1w, [("out_file", "input_image")]),
        (brain_wf, mni_mask, [("outputnode.brain_mask", "input_image")]),
        (brain_wf, mni_probseg, [("outputnode.probseg", "input_image")]),
        (template, mni_t1w, [("t1w", "reference_image")]),
        (template, mni_mask, [("t1w", "reference_image")]),
        (template, mni_probseg, [("t1w", "reference_image")]),
        (brain_wf, mni_t1w, [("outputnode.forward_transforms", "transforms")]),
        (brain_wf, mni_mask, [("outputnode.forward_transforms", "transforms")]),
        (brain_wf, mni_probseg, [("outputnode.forward_transforms", "transforms")]),
        (mni_t1w, overlay, [("output_image", "image")]),
        (template, overlay, [("brain_mask", "contour")]),
        (template, wm_prior, [("priors", "inlist")]),
        (wm_prior, overlay, [("out", "edges")]),
        (n4, outputnode, [("out_file", "t1w_preproc")]),
        (brain_wf, outputnode, [("outputnode.brain_mask", "brain_mask"),
                                ("outputnode.probseg", "probseg"),
                                ("outputnode.forward_transforms", "t1w2mni_xfm"),
                                ("outputnode.reverse_transforms", "mni2t1w_xfm"),
                                ("outputnode.reverse_invert_flags", "mni2t1w_invert")]),
        (mni_t1w, outputnode, [("output_image", "mni_t1w")]),
        (mni_mask, outputnode, [("output_image", "mni_mask")]),
        (mni_probseg, outputnode, [("output_image", "mni_probseg")]),
        (overlay, outputnode, [("out_png", "overlay_png")]),
    ])
    # fmt: on
    return wf


def validate_t1w(subject: str, t1w: str | Path) -> None:
    """Stop early, naming subject, file and fix, unless ``t1w`` is a finite 3D image.

    Raises
    ------
    InputError
        Unreadable file, not 3D (a 4D file with one volume is accepted), fewer than 16
        voxels along an axis, NaN or infinite voxels, or an empty (constant) image.
    """
    try:
        img = nib.load(str(t1w))
    except Exception as err:  # nibabel raises several types for unreadable files
        raise InputError(
            subject, t1w, f"cannot read the T1w image ({err})", "provide a valid NIfTI file"
        ) from err
    shape = img.shape
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise InputError(
            subject,
            t1w,
            f"the T1w image is {len(img.shape)}D with shape {img.shape}, expected one 3D volume",
            "select a single 3D T1w series (e.g. adjust the dicom.series.T1w rules or keep one "
            "volume)",
        )
    if min(shape) < 16:
        raise InputError(
            subject, t1w, f"the T1w image has only shape {shape}", "provide a whole-head 3D T1w"
        )
    data = np.asarray(img.dataobj, dtype=np.float32)
    bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
    if bad:
        raise InputError(
            subject,
            t1w,
            f"the T1w image has {bad} NaN or infinite voxels",
            "reconvert the T1w from DICOM or replace the non-finite voxels (e.g. by 0)",
        )
    if float(data.max()) <= float(data.min()):
        raise InputError(subject, t1w, "the T1w image is constant", "provide a real T1w image")


def parameters(syn_resolution_mm: int = DEFAULT_SYN_RESOLUTION_MM) -> dict:
    """The parameters that make the anatomical outputs (for provenance records).

    Parameters
    ----------
    syn_resolution_mm : int
        Finest grid (mm) of the SyN normalisation, as given to :func:`init_anat_wf`.
    """
    return {
        "template": templates.TEMPLATE_SPACE,
        "mni_resolution_mm": MNI_RESOLUTION,
        "n4": N4BiasFieldCorrection().inputs.get_traitsfree(),
        "affine_stages": AFFINE_STAGES,
        "syn_stages": syn_stages(syn_resolution_mm),
        "head_margin_mm": HEAD_MARGIN_MM,
        "atropos_band_mm": BAND_MM,
        "tissue_floor": TISSUE_FLOOR,
        "csf_rim_mm": RIM_MM,
        "interpolation": {
            "T1w": "LanczosWindowedSinc",
            "mask": "GenericLabel",
            "probseg": "Linear",
        },
    }


def run_anat(
    subject: str,
    t1w: str | Path,
    deriv_root: str | Path,
    work_dir: str | Path,
    threads: int = 1,
    seed: int = 0,
    syn_resolution_mm: int = DEFAULT_SYN_RESOLUTION_MM,
) -> dict[str, Path]:
    """Preprocess one subject's T1w and write its derivatives.

    Parameters
    ----------
    subject : str
        Participant label, with or without ``sub-``.
    t1w : path
        Raw T1w NIfTI.
    deriv_root : path
        BIDS-derivatives root; files go to :func:`anat_outputs`.
    work_dir : path
        nipype working directory root; the workflow runs in
        ``work_dir/anat_sub-<label>`` so a rerun resumes from nipype's cache.
    threads : int
        Threads for ITK, BLAS and torch.
    seed : int
        Random seed of the registrations.
    syn_resolution_mm : int
        Finest grid (mm) of the SyN normalisation (:func:`init_anat_wf`).

    Returns
    -------
    dict of str to Path
        :func:`anat_outputs`, all written.

    Raises
    ------
    InputError
        Bad input (see :func:`validate_t1w`).
    WorkflowError
        A node crashed; the message holds the text of nipype's crash files.
    """
    validate_t1w(subject, t1w)
    limit_threads(threads)
    outputs = anat_outputs(deriv_root, subject)
    label = subject.removeprefix("sub-")
    base_dir = Path(work_dir).resolve() / f"anat_sub-{label}"
    crash_dir = base_dir / "crash"
    wf = pe.Workflow(name=f"anat_sub_{label}_wf", base_dir=str(base_dir))
    anat_wf = init_anat_wf(seed=seed, omp_nthreads=threads, syn_resolution_mm=syn_resolution_mm)
    anat_wf.inputs.inputnode.t1w = str(Path(t1w).resolve())
    sink = pe.Node(
        AnatDerivatives(
            deriv_root=str(Path(deriv_root).resolve()), subject=label, source=bids_uri(t1w)
        ),
        name="derivatives",
        overwrite=True,
    )
    wf.connect([(anat_wf, sink, [(f"outputnode.{f}", f) for f in SINK_FIELDS])])
    wf.config["execution"].update(
        {
            "crashfile_format": "txt",
            "crashdump_dir": str(crash_dir),
            "stop_on_first_crash": True,
            "remove_unnecessary_outputs": False,
        }
    )
    already = set(crash_dir.glob("crash-*")) if crash_dir.is_dir() else set()
    LOGGER.info("sub-%s: anatomical workflow, nipype working directory %s", label, base_dir)
    try:
        wf.run(plugin="Linear")
    except Exception as err:
        crashes = sorted(set(crash_dir.glob("crash-*")) - already) if crash_dir.is_dir() else []
        text = "\n".join(f"--- {c}\n{c.read_text()}" for c in crashes) or repr(err)
        raise WorkflowError(f"sub-{label}: anatomical workflow failed\n{text}") from err
    LOGGER.info("sub-%s: anatomical derivatives written under %s", label, deriv_root)
    write_provenance(
        outputs["provenance"],
        step="anat",
        inputs=[t1w],
        parameters={**parameters(syn_resolution_mm), "threads": threads},
        seed=seed,
        extra={"subject": f"sub-{label}"},
    )
    return outputs


def to_mni(
    image: str | Path | nib.Nifti1Image,
    outputs: dict[str, Path],
    interpolation: str = "Linear",
    resolution: int = MNI_RESOLUTION,
    time_series: bool = False,
) -> nib.Nifti1Image:
    """Resample a native-space image into MNI152NLin2009aSym with a subject's transforms.

    The image must be in the subject's T1w *world* space (any grid: the T1w itself, a
    mask, a label map, or an EPI already aligned to the T1w in scanner coordinates).
    It is resampled once, through ``[warp, affine]`` (:func:`t1w2mni_transforms`).

    Parameters
    ----------
    image : path or nibabel image
        3D image, or 4D with ``time_series``.
    outputs : dict
        :func:`anat_outputs` of the subject (only the transform keys are read).
    interpolation : str
        ``"Linear"``, ``"NearestNeighbor"``, ``"GenericLabel"`` (label maps),
        ``"LanczosWindowedSinc"`` or ``"BSpline"``.
    resolution : int
        Isotropic voxel size (mm) of the template grid, e.g. 2 (99 x 117 x 95) or 3.

    Returns
    -------
    nibabel.Nifti1Image
        float32 image on the ``templates.mni_t1(resolution)`` grid.
    """
    with tempfile.TemporaryDirectory(prefix="neurofusion-to-mni-") as scratch:
        scratch = Path(scratch)
        if isinstance(image, nib.Nifti1Image):
            nib.save(image, str(scratch / "in.nii.gz"))
            image = scratch / "in.nii.gz"
        reference = scratch / "reference.nii.gz"
        nib.save(templates.mni_t1(resolution), str(reference))
        out = apply_transforms(
            image,
            reference,
            t1w2mni_transforms(outputs),
            scratch / "out.nii.gz",
            interpolation=interpolation,
            time_series=time_series,
        )
        img = nib.load(str(out))
        return nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.float32), img.affine, img.header)
