"""The functional workflow: raw resting BOLD to clean BOLD in MNI at 3 mm, with confounds.

Order (the study's, DPARSF's): drop dummy scans -> slice-timing correction -> rigid
realignment -> EPI -> T1w registration -> one resampling to MNI composing motion,
coregistration and normalisation (of the brain plus 10 mm) -> confounds -> denoising
(regress WM + CSF, smooth 4 mm, detrend, band-pass 0.01-0.08 Hz, or the configured
alternative). fALFF is taken from the denoised data just before the band-pass, ReHo from
the clean BOLD.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nipype.algorithms.confounds import TSNR, ACompCor, FramewiseDisplacement
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from neurofusion.preprocessing.anat_outputs import subject_label, t1w2mni_transforms
from neurofusion.preprocessing.bold_interfaces import (
    SERIES_SUFFIX,
    BoldMasks,
    CoregisterEpi,
    Denoise,
    FuncReports,
    GatherConfounds,
    LoadBold,
    Realign,
    Reho,
    ResampleBold,
    SamplingRegion,
    SliceTimingCorrection,
)
from neurofusion.preprocessing.confounds import N_COMPCOR
from neurofusion.preprocessing.execution import run_workflow
from neurofusion.preprocessing.func_outputs import func_outputs, write_func_outputs
from neurofusion.preprocessing.image_interfaces import TISSUES
from neurofusion.preprocessing.template_grid import TemplateGrid
from neurofusion.preprocessing.threads import limit_threads
from neurofusion.provenance import write_provenance


@dataclasses.dataclass(frozen=True)
class FuncSettings:
    """Parameters of the functional workflow (``preprocessing.func`` in config.yaml).

    Attributes
    ----------
    dummy_scans : int
        Volumes discarded at the start (DPARSF: 10).
    min_volumes : int
        Fewest volumes allowed after that.
    slice_timing : bool
        Correct slice timing.
    fallback_order : str or None
        Slice order when the sidecar has no SliceTiming (see :mod:`.slice_timing`).
    strategy : str
        Confounds regressed out: ``study`` (WM + CSF), ``24P``, ``36P``, ``acompcor``.
    global_signal : bool
        Also regress the global signal.
    order : str
        ``study`` or ``simultaneous`` (see :mod:`.denoise`).
    fwhm_mm : float
        Smoothing kernel FWHM (mm).
    band_hz : tuple of float
        Band-pass (Hz).
    censor_fd_mm : float or None
        Drop volumes with Power FD above this (mm) from the clean BOLD; None keeps all.
    resolution_mm : int
        Isotropic voxel size of the MNI output (mm).
    seed : int
        ANTs random seed.
    """

    dummy_scans: int = 10
    min_volumes: int = 50
    slice_timing: bool = True
    fallback_order: str | None = None
    strategy: str = "study"
    global_signal: bool = False
    order: str = "study"
    fwhm_mm: float = 4.0
    band_hz: tuple[float, float] = (0.01, 0.08)
    censor_fd_mm: float | None = None
    resolution_mm: int = 3
    seed: int = 0

    @classmethod
    def from_config(cls, func: Mapping[str, Any], seed: int = 0) -> FuncSettings:
        """Settings from the ``preprocessing.func`` block of config.yaml."""
        timing = func.get("slice_timing", {})
        denoising = func.get("denoise", {})
        return cls(
            dummy_scans=func.get("dummy_scans", cls.dummy_scans),
            min_volumes=func.get("min_volumes", cls.min_volumes),
            slice_timing=timing.get("enabled", cls.slice_timing),
            fallback_order=timing.get("fallback_order"),
            strategy=denoising.get("strategy", cls.strategy),
            global_signal=denoising.get("global_signal", cls.global_signal),
            order=denoising.get("order", cls.order),
            fwhm_mm=float(denoising.get("fwhm_mm", cls.fwhm_mm)),
            band_hz=tuple(denoising.get("band_hz", cls.band_hz)),
            censor_fd_mm=denoising.get("censor_fd_mm"),
            resolution_mm=func.get("resolution_mm", cls.resolution_mm),
            seed=seed,
        )


def _static_chain(t1w2mni, t1w2mni_invert, epi2t1w):
    """Output grid -> T1w -> EPI reference, as one ANTs list with its invert flags."""
    return list(t1w2mni) + list(epi2t1w), list(t1w2mni_invert) + [False] * len(epi2t1w)


def init_func_wf(
    subject: str, settings: FuncSettings, name: str = "func_wf", *, omp_nthreads: int = 1
) -> pe.Workflow:
    """Build the functional workflow of one subject.

    Parameters
    ----------
    subject : str
        Participant label (for error messages).
    settings : FuncSettings
        Parameters.
    name : str
        Workflow name (the folder under nipype's base directory).
    omp_nthreads : int
        Threads that resample volumes in parallel (the result does not depend on it).

    Returns
    -------
    nipype.pipeline.engine.Workflow
        ``inputnode`` fields: ``bold_file``, ``sidecar_file`` (raw BIDS run),
        ``t1w_preproc``, ``t1w_mask``, ``probseg`` (native [GM, WM, CSF]),
        ``t1w2mni_xfm`` and ``t1w2mni_invert`` (ANTs list taking MNI points to T1w
        points). ``outputnode`` fields: ``clean_bold``, ``brain_mask``, ``confounds``,
        ``boldref``, ``qc``, ``motion_png``, ``carpet_png``, ``registration_png``,
        ``kept_volumes``, ``tr``, ``boldref2t1w_xfm`` (list with the rigid EPI -> T1w
        ITK transform: T1w points to EPI reference points), ``falff`` and ``reho``
        (voxel-wise maps, see :mod:`.boldmaps`).
    """
    wf = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(
            fields=[
                "bold_file",
                "sidecar_file",
                "t1w_preproc",
                "t1w_mask",
                "probseg",
                "t1w2mni_xfm",
                "t1w2mni_invert",
            ]
        ),
        name="inputnode",
    )
    outputnode = pe.Node(
        niu.IdentityInterface(
            fields=[
                "clean_bold",
                "brain_mask",
                "confounds",
                "boldref",
                "qc",
                "motion_png",
                "carpet_png",
                "registration_png",
                "kept_volumes",
                "tr",
                "boldref2t1w_xfm",
                "falff",
                "reho",
            ]
        ),
        name="outputnode",
    )
    load = pe.Node(
        LoadBold(
            subject=subject,
            dummy_scans=settings.dummy_scans,
            min_volumes=settings.min_volumes,
            fallback_order=settings.fallback_order,
            slice_timing=settings.slice_timing,
        ),
        name="load_bold",
    )
    realign = pe.Node(Realign(), name="realign")
    coreg = pe.Node(CoregisterEpi(seed=settings.seed), name="coregister")
    grid = pe.Node(TemplateGrid(resolution_mm=settings.resolution_mm), name="template_grid")
    chain = pe.Node(
        niu.Function(
            function=_static_chain,
            input_names=["t1w2mni", "t1w2mni_invert", "epi2t1w"],
            output_names=["transforms", "invert"],
        ),
        name="static_chain",
    )
    resample = pe.Node(
        ResampleBold(num_threads=omp_nthreads), name="resample", n_procs=omp_nthreads
    )
    region = pe.Node(SamplingRegion(), name="sampling_region")
    masks = pe.Node(BoldMasks(), name="masks")
    fd = pe.Node(FramewiseDisplacement(parameter_source="SPM"), name="fd_power")
    compcor = pe.Node(
        ACompCor(
            num_components=N_COMPCOR,
            merge_method="none",
            pre_filter="cosine",
            header_prefix="a_comp_cor_",
            components_file="acompcor.tsv",
        ),
        name="acompcor",
    )
    tsnr = pe.Node(TSNR(regress_poly=2, detrended_file=f"detrend{SERIES_SUFFIX}"), name="tsnr")
    gather = pe.Node(GatherConfounds(), name="confounds")
    clean = pe.Node(
        Denoise(
            strategy=settings.strategy,
            global_signal=settings.global_signal,
            order=settings.order,
            fwhm_mm=settings.fwhm_mm,
            band_hz=settings.band_hz,
            censor_fd_mm=settings.censor_fd_mm,
        ),
        name="denoise",
    )
    homogeneity = pe.Node(Reho(), name="reho")
    reports = pe.Node(FuncReports(), name="reports")

    if settings.slice_timing:
        stc = pe.Node(SliceTimingCorrection(), name="slice_timing")
        wf.connect([
            (load, stc, [("bold_file", "bold_file"), ("tr", "tr"),
                         ("slice_times", "slice_times"), ("slice_axis", "slice_axis")]),
        ])  # fmt: skip
        corrected = (stc, "bold_file")
    else:
        corrected = (load, "bold_file")
    wf.connect([
        (inputnode, load, [("bold_file", "bold_file"), ("sidecar_file", "sidecar_file")]),
        (corrected[0], realign, [(corrected[1], "bold_file")]),
        (corrected[0], resample, [(corrected[1], "bold_file")]),
        (realign, coreg, [("reference_file", "boldref_file")]),
        (inputnode, coreg, [("t1w_preproc", "t1w_file"), ("t1w_mask", "t1w_mask")]),
        (inputnode, chain, [("t1w2mni_xfm", "t1w2mni"), ("t1w2mni_invert", "t1w2mni_invert")]),
        (coreg, chain, [("transforms", "epi2t1w")]),
        (realign, resample, [("reference_file", "reference_file"),
                             ("poses_file", "poses_file")]),
        (grid, resample, [("t1w_file", "target_file")]),
        (chain, resample, [("transforms", "static_transforms"), ("invert", "static_invert")]),
        (grid, region, [("t1w_file", "target_file")]),
        (inputnode, region, [("t1w_mask", "t1w_mask"), ("t1w2mni_xfm", "t1w2target"),
                             ("t1w2mni_invert", "t1w2target_invert")]),
        (region, resample, [("region_file", "region_file")]),
        (grid, masks, [("t1w_file", "target_file")]),
        (resample, masks, [("boldref_file", "boldref_file")]),
        (inputnode, masks, [("t1w_mask", "t1w_mask"), ("probseg", "probseg"),
                            ("t1w2mni_xfm", "t1w2target"),
                            ("t1w2mni_invert", "t1w2target_invert")]),
        (realign, fd, [("par_file", "in_file")]),
        (resample, compcor, [("bold_file", "realigned_file")]),
        (masks, compcor, [("compcor_mask", "mask_files")]),
        (load, compcor, [("tr", "repetition_time")]),
        (resample, tsnr, [("bold_file", "in_file")]),
        (resample, gather, [("bold_file", "bold_file")]),
        (masks, gather, [("brain_mask", "brain_mask"), ("wm_mask", "wm_mask"),
                         ("csf_mask", "csf_mask")]),
        (realign, gather, [("par_file", "par_file"), ("fd_jenkinson_file", "fd_jenkinson_file")]),
        (fd, gather, [("out_file", "fd_file")]),
        (compcor, gather, [("components_file", "compcor_file")]),
        (resample, clean, [("bold_file", "bold_file")]),
        (masks, clean, [("brain_mask", "mask_file")]),
        (gather, clean, [("confounds_file", "confounds_file")]),
        (load, clean, [("tr", "tr")]),
        (gather, reports, [("confounds_file", "confounds_file")]),
        (resample, reports, [("bold_file", "bold_file"), ("boldref_file", "boldref_file")]),
        (tsnr, reports, [("tsnr_file", "tsnr_file")]),
        (masks, reports, [("brain_mask", "brain_mask"), ("gm_mask", "gm_mask")]),
        (grid, reports, [("mask_file", "template_mask")]),
        (load, reports, [("tr", "tr")]),
        (clean, homogeneity, [("bold_file", "bold_file")]),
        (masks, homogeneity, [("brain_mask", "mask_file")]),
        (clean, outputnode, [("bold_file", "clean_bold"), ("kept_volumes", "kept_volumes"),
                             ("falff_file", "falff")]),
        (homogeneity, outputnode, [("reho_file", "reho")]),
        (masks, outputnode, [("brain_mask", "brain_mask")]),
        (gather, outputnode, [("confounds_file", "confounds")]),
        (resample, outputnode, [("boldref_file", "boldref")]),
        (reports, outputnode, [("qc_file", "qc"), ("motion_png", "motion_png"),
                               ("carpet_png", "carpet_png"),
                               ("registration_png", "registration_png")]),
        (load, outputnode, [("tr", "tr")]),
        (coreg, outputnode, [("transforms", "boldref2t1w_xfm")]),
    ])  # fmt: skip
    return wf


def run_func(
    subject: str,
    bold: str | Path,
    sidecar: str | Path,
    anat: Mapping[str, Path],
    deriv_root: str | Path,
    work_dir: str | Path,
    settings: FuncSettings,
    threads: int = 1,
) -> dict[str, Path]:
    """Preprocess one subject's resting BOLD and write its derivatives.

    Parameters
    ----------
    subject : str
        Participant label, with or without ``sub-``.
    bold, sidecar : path
        Raw BOLD run and its JSON sidecar.
    anat : mapping
        :func:`~neurofusion.preprocessing.anat_outputs.anat_outputs` of the subject.
    deriv_root : path
        BIDS-derivatives root.
    work_dir : path
        nipype working directory root (``work_dir/func_sub-<label>`` resumes a crashed run).
    settings : FuncSettings
        Parameters.
    threads : int
        Threads for ITK, BLAS and the resampling of the volumes.

    Returns
    -------
    dict of str to Path
        :func:`func_outputs`, all written.

    Raises
    ------
    InputError
        Bad input (3D run, missing TR, too few volumes, NaN voxels, bad SliceTiming).
    WorkflowError
        A node crashed; the message holds nipype's crash files.
    """
    label = subject_label(subject)
    limit_threads(threads)
    outputs = func_outputs(deriv_root, label, settings.resolution_mm)
    # Sidecars name the inputs as given (relative to the workflow folder), so the same
    # data processed in another folder gives byte-identical outputs.
    sources = [str(bold), *(str(anat[k]) for k in ("t1w_preproc", "t1w2mni_affine"))]
    anat = {key: Path(path).resolve() for key, path in anat.items()}
    wf = init_func_wf(label, settings, name=f"func_sub_{label}_wf", omp_nthreads=threads)
    inputs = wf.inputs.inputnode
    inputs.bold_file = str(Path(bold).resolve())
    inputs.sidecar_file = str(Path(sidecar).resolve())
    inputs.t1w_preproc = str(anat["t1w_preproc"])
    inputs.t1w_mask = str(anat["brain_mask"])
    inputs.probseg = [str(anat[f"probseg_{t}"]) for t in TISSUES]
    inputs.t1w2mni_xfm = [str(p) for p in t1w2mni_transforms(anat)]
    inputs.t1w2mni_invert = [False, False]
    results = run_workflow(wf, Path(work_dir) / f"func_sub-{label}", f"sub-{label}")
    write_func_outputs(results, outputs, sources, settings)
    write_provenance(
        outputs["provenance"],
        step="func",
        inputs=[bold, sidecar],
        parameters={**dataclasses.asdict(settings), "threads": threads},
        seed=settings.seed,
        extra={"subject": f"sub-{label}"},
    )
    return outputs
