"""nipype interfaces of the functional workflow (each wraps one library function)."""

from __future__ import annotations

from pathlib import Path

import ants
import nibabel as nib
import numpy as np
import pandas as pd
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from neurofusion.fileio import write_json
from neurofusion.preprocessing.ants_interfaces import Registration, ants_seed
from neurofusion.preprocessing.bold_input import load_bold, slice_axis
from neurofusion.preprocessing.bold_reports import (
    carpet_figure,
    func_qc,
    motion_figure,
    registration_figure,
)
from neurofusion.preprocessing.boldmaps import falff, reho
from neurofusion.preprocessing.confounds import confounds_table, dvars, select_confounds
from neurofusion.preprocessing.denoise import denoise_series, to_image
from neurofusion.preprocessing.image_interfaces import save_downsampled
from neurofusion.preprocessing.masks import bold_masks, sampling_region
from neurofusion.preprocessing.motion import (
    framewise_displacement_jenkinson,
    motion_parameters,
    realign,
)
from neurofusion.preprocessing.resample import compose_to_reference, resample_series
from neurofusion.preprocessing.slice_timing import correct_slice_timing, resolve_slice_times

#: Suffix of the 4D series passed between nodes. Uncompressed: gzip level 1 of a demo run
#: (67 x 79 x 64 x 130 float32, barely compressible) took 7.2 s to write and 1.6 s to read,
#: against 0.08 s and 0.002 s for plain NIfTI; derivatives are still written gzipped.
SERIES_SUFFIX = ".nii"


def _save(img: nib.Nifti1Image, name: str) -> str:
    path = Path.cwd() / name
    nib.save(img, path)
    return str(path)


class _LoadBoldInputSpec(BaseInterfaceInputSpec):
    subject = traits.Str(mandatory=True, desc="participant label")
    bold_file = File(exists=True, mandatory=True, desc="raw 4D BOLD (BIDS)")
    sidecar_file = File(exists=True, mandatory=True, desc="BIDS JSON sidecar")
    dummy_scans = traits.Int(10, usedefault=True, desc="volumes to discard")
    min_volumes = traits.Int(50, usedefault=True, desc="fewest volumes to keep")
    fallback_order = traits.Either(None, traits.Str, usedefault=True, desc="slice order")
    slice_timing = traits.Bool(True, usedefault=True, desc="resolve slice times")


class _LoadBoldOutputSpec(TraitedSpec):
    bold_file = File(exists=True, desc="BOLD without dummy scans, float32")
    tr = traits.Float(desc="repetition time (s)")
    slice_times = traits.List(traits.Float, desc="slice times (s); empty when unused")
    slice_axis = traits.Int(desc="voxel axis of the slices")


class LoadBold(SimpleInterface):
    """Check the raw run (dimensions, TR, length, finite values) and drop dummy scans."""

    input_spec = _LoadBoldInputSpec
    output_spec = _LoadBoldOutputSpec

    def _run_interface(self, runtime):
        inputs = self.inputs
        img, sidecar = load_bold(
            inputs.subject,
            inputs.bold_file,
            inputs.sidecar_file,
            inputs.dummy_scans,
            inputs.min_volumes,
        )
        axis = slice_axis(img, sidecar)
        times = []
        if inputs.slice_timing:
            times = resolve_slice_times(
                inputs.subject,
                inputs.sidecar_file,
                sidecar,
                img.shape[axis],
                inputs.fallback_order,
            ).tolist()
        self._results.update(
            bold_file=_save(img, f"bold_nodummies{SERIES_SUFFIX}"),
            tr=float(sidecar["RepetitionTime"]),
            slice_times=times,
            slice_axis=axis,
        )
        return runtime


class _SliceTimingInputSpec(BaseInterfaceInputSpec):
    bold_file = File(exists=True, mandatory=True)
    tr = traits.Float(mandatory=True, desc="repetition time (s)")
    slice_times = traits.List(traits.Float, mandatory=True, desc="slice times (s)")
    slice_axis = traits.Int(2, usedefault=True)


class _BoldOutputSpec(TraitedSpec):
    bold_file = File(exists=True)


class SliceTimingCorrection(SimpleInterface):
    """Fourier-shift every slice to the middle of the TR (see :mod:`.slice_timing`)."""

    input_spec = _SliceTimingInputSpec
    output_spec = _BoldOutputSpec

    def _run_interface(self, runtime):
        img = nib.load(self.inputs.bold_file)
        data = correct_slice_timing(
            np.asarray(img.dataobj, dtype=np.float32),
            self.inputs.slice_times,
            self.inputs.tr,
            self.inputs.slice_axis,
        )
        self._results["bold_file"] = _save(
            nib.Nifti1Image(data, img.affine, img.header), f"bold_stc{SERIES_SUFFIX}"
        )
        return runtime


class _RealignInputSpec(BaseInterfaceInputSpec):
    bold_file = File(exists=True, mandatory=True)


class _RealignOutputSpec(TraitedSpec):
    poses_file = File(exists=True, desc="(t, 16) RAS head pose matrices, row-major")
    par_file = File(exists=True, desc="SPM-style parameters: mm, mm, mm, rad, rad, rad")
    fd_jenkinson_file = File(exists=True, desc="Jenkinson FD per volume (mm)")
    reference_file = File(exists=True, desc="reference volume (native EPI)")


class Realign(SimpleInterface):
    """Rigid realignment of every volume to the first (see :mod:`.motion`)."""

    input_spec = _RealignInputSpec
    output_spec = _RealignOutputSpec

    def _run_interface(self, runtime):
        matrices, reference = realign(nib.load(self.inputs.bold_file))
        np.savetxt("motion.par", motion_parameters(matrices), fmt="%.8f")
        np.savetxt("fd_jenkinson.txt", framewise_displacement_jenkinson(matrices), fmt="%.6f")
        np.savetxt("poses.txt", matrices.reshape(len(matrices), 16), fmt="%.10f")
        self._results.update(
            poses_file=str(Path.cwd() / "poses.txt"),
            par_file=str(Path.cwd() / "motion.par"),
            fd_jenkinson_file=str(Path.cwd() / "fd_jenkinson.txt"),
            reference_file=_save(reference, "boldref.nii.gz"),
        )
        return runtime


class _ResampleInputSpec(BaseInterfaceInputSpec):
    bold_file = File(exists=True, mandatory=True, desc="native BOLD")
    reference_file = File(exists=True, mandatory=True, desc="native EPI reference volume")
    target_file = File(exists=True, mandatory=True, desc="image on the output grid")
    poses_file = File(exists=True, mandatory=True, desc="(t, 16) RAS head poses")
    static_transforms = InputMultiObject(
        File(exists=True), mandatory=True, desc="output grid -> EPI reference, ANTs order"
    )
    static_invert = traits.List(traits.Bool, mandatory=True, desc="ANTs whichtoinvert")
    region_file = File(exists=True, desc="output voxels to sample (others 0); all if unset")
    num_threads = traits.Int(1, usedefault=True, nohash=True, desc="volumes sampled at once")


class _ResampleOutputSpec(TraitedSpec):
    bold_file = File(exists=True, desc="BOLD on the output grid, float32")
    boldref_file = File(exists=True, desc="temporal mean on the output grid")


class ResampleBold(SimpleInterface):
    """One interpolation per volume: motion, EPI -> T1w and T1w -> MNI composed."""

    input_spec = _ResampleInputSpec
    output_spec = _ResampleOutputSpec

    def _run_interface(self, runtime):
        target = nib.load(self.inputs.target_file)
        field = compose_to_reference(
            target,
            nib.load(self.inputs.reference_file),
            self.inputs.static_transforms,
            self.inputs.static_invert,
            Path.cwd() / "epi2target_",
        )
        poses = np.loadtxt(self.inputs.poses_file, ndmin=2).reshape(-1, 4, 4)
        region = None
        if isdefined(self.inputs.region_file):
            region = np.asarray(nib.load(self.inputs.region_file).dataobj) > 0
        out = resample_series(
            nib.load(self.inputs.bold_file),
            target,
            poses,
            field,
            threads=self.inputs.num_threads,
            region=region,
        )
        mean = nib.Nifti1Image(np.asarray(out.dataobj).mean(axis=3), out.affine)
        self._results.update(
            bold_file=_save(out, f"bold_space-target{SERIES_SUFFIX}"),
            boldref_file=_save(mean, "boldref_space-target.nii.gz"),
        )
        return runtime


class _ConfoundsInputSpec(BaseInterfaceInputSpec):
    bold_file = File(exists=True, mandatory=True, desc="BOLD on the output grid")
    brain_mask = File(exists=True, mandatory=True)
    wm_mask = File(exists=True, mandatory=True, desc="eroded white matter")
    csf_mask = File(exists=True, mandatory=True, desc="eroded CSF")
    par_file = File(exists=True, mandatory=True)
    fd_file = File(exists=True, mandatory=True, desc="nipype FramewiseDisplacement output")
    fd_jenkinson_file = File(exists=True, mandatory=True)
    compcor_file = File(exists=True, mandatory=True, desc="nipype ACompCor components")


class _ConfoundsOutputSpec(TraitedSpec):
    confounds_file = File(exists=True, desc="confounds TSV (fMRIPrep column names)")


class GatherConfounds(SimpleInterface):
    """Tissue signals and DVARS plus the motion, FD and CompCor files, as one TSV."""

    input_spec = _ConfoundsInputSpec
    output_spec = _ConfoundsOutputSpec

    def _run_interface(self, runtime):
        data = np.asarray(nib.load(self.inputs.bold_file).dataobj, dtype=np.float32)

        def mean_in(mask_file):
            mask = np.asarray(nib.load(mask_file).dataobj) > 0
            return data[mask].mean(axis=0) if mask.any() else np.zeros(data.shape[-1])

        signals = {
            "white_matter": mean_in(self.inputs.wm_mask),
            "csf": mean_in(self.inputs.csf_mask),
            "global_signal": mean_in(self.inputs.brain_mask),
        }
        # nipype writes FD for volumes 2..t; the first volume gets 0.
        fd = np.r_[0.0, np.loadtxt(self.inputs.fd_file, skiprows=1, ndmin=1)]
        brain = np.asarray(nib.load(self.inputs.brain_mask).dataobj) > 0
        raw_dvars, std_dvars = dvars(data[brain])
        compcor = pd.read_csv(self.inputs.compcor_file, sep="\t").to_numpy()
        table = confounds_table(
            parameters=np.loadtxt(self.inputs.par_file, ndmin=2),
            fd_power=fd,
            fd_jenkinson=np.loadtxt(self.inputs.fd_jenkinson_file, ndmin=1),
            dvars=raw_dvars,
            std_dvars=std_dvars,
            tissue_signals=signals,
            compcor=compcor,
        )
        path = Path.cwd() / "confounds.tsv"
        table.to_csv(path, sep="\t", index=False, float_format="%.8g")
        self._results["confounds_file"] = str(path)
        return runtime


class _DenoiseInputSpec(BaseInterfaceInputSpec):
    bold_file = File(exists=True, mandatory=True)
    mask_file = File(exists=True, mandatory=True)
    confounds_file = File(exists=True, mandatory=True)
    tr = traits.Float(mandatory=True)
    strategy = traits.Enum("study", "24P", "36P", "acompcor", usedefault=True)
    global_signal = traits.Bool(False, usedefault=True)
    order = traits.Enum("study", "simultaneous", usedefault=True)
    fwhm_mm = traits.Float(4.0, usedefault=True)
    band_hz = traits.Tuple(traits.Float, traits.Float, default=(0.01, 0.08), usedefault=True)
    censor_fd_mm = traits.Either(None, traits.Float, usedefault=True)


class _DenoiseOutputSpec(TraitedSpec):
    bold_file = File(exists=True, desc="clean BOLD")
    falff_file = File(exists=True, desc="fALFF of the unfiltered data (3D, float32)")
    kept_volumes = traits.List(traits.Int, desc="indices of the volumes kept")


class Denoise(SimpleInterface):
    """Confound regression, smoothing, detrending and band-pass (see :mod:`.denoise`).

    fALFF (:func:`~neurofusion.preprocessing.boldmaps.falff`) is computed here, from the
    regressed, smoothed, detrended series just before the band-pass, so the unfiltered 4D
    data never has to be written; it uses every volume (censoring would break the regular
    sampling a spectrum needs).
    """

    input_spec = _DenoiseInputSpec
    output_spec = _DenoiseOutputSpec

    def _run_interface(self, runtime):
        img = nib.load(self.inputs.bold_file)
        mask = np.asarray(nib.load(self.inputs.mask_file).dataobj) > 0
        table = pd.read_csv(self.inputs.confounds_file, sep="\t")
        regressors = select_confounds(table, self.inputs.strategy, self.inputs.global_signal)
        unfiltered, series = denoise_series(
            np.asarray(img.dataobj, dtype=np.float32),
            mask,
            img.affine,
            regressors.to_numpy(),
            self.inputs.tr,
            order=self.inputs.order,
            fwhm_mm=self.inputs.fwhm_mm,
            band_hz=self.inputs.band_hz,
        )
        amplitude = np.zeros(mask.shape, dtype=np.float32)
        amplitude[mask] = falff(unfiltered, self.inputs.tr, self.inputs.band_hz)
        del unfiltered
        clean = to_image(series, mask)
        del series
        kept = np.arange(clean.shape[-1])
        censor = self.inputs.censor_fd_mm
        if isdefined(censor) and censor is not None:
            kept = kept[table["framewise_displacement"].to_numpy() <= censor]
            clean = clean[..., kept]
        self._results.update(
            bold_file=_save(
                nib.Nifti1Image(clean, img.affine, img.header), f"bold_clean{SERIES_SUFFIX}"
            ),
            falff_file=_save(nib.Nifti1Image(amplitude, img.affine), "falff.nii.gz"),
            kept_volumes=kept.tolist(),
        )
        return runtime


class _RehoInputSpec(BaseInterfaceInputSpec):
    bold_file = File(exists=True, mandatory=True, desc="clean BOLD")
    mask_file = File(exists=True, mandatory=True, desc="brain mask")


class _RehoOutputSpec(TraitedSpec):
    reho_file = File(exists=True, desc="ReHo (Kendall's W, 27 voxels; 3D, float32)")


class Reho(SimpleInterface):
    """Regional homogeneity of the clean BOLD (see :func:`.boldmaps.reho`)."""

    input_spec = _RehoInputSpec
    output_spec = _RehoOutputSpec

    def _run_interface(self, runtime):
        img = nib.load(self.inputs.bold_file)
        mask = np.asarray(nib.load(self.inputs.mask_file).dataobj) > 0
        homogeneity = reho(np.asarray(img.dataobj, dtype=np.float32), mask)
        self._results["reho_file"] = _save(nib.Nifti1Image(homogeneity, img.affine), "reho.nii.gz")
        return runtime


#: EPI -> T1w: antspyx's "Rigid" recipe (Mattes MI, 32 bins, 20 % regular sampling).
COREG_STAGES = [
    {
        "transform": "Rigid[0.25]",
        "metric": "MI",
        "metric_params": "1,32,Regular,0.2",
        "iterations": [2100, 1200, 1200, 10],
        "shrink": [6, 4, 2, 1],
        "sigmas_vox": [3, 2, 1, 0],
    }
]


class _CoregisterInputSpec(BaseInterfaceInputSpec):
    boldref_file = File(exists=True, mandatory=True, desc="native EPI reference volume")
    t1w_file = File(exists=True, mandatory=True, desc="bias-corrected T1w")
    t1w_mask = File(exists=True, mandatory=True, desc="T1w brain mask")
    t1w_spacing_mm = traits.Float(
        2.0, usedefault=True, desc="the T1w brain is registered on a grid no finer than this"
    )
    seed = traits.Int(0, usedefault=True)


class _CoregisterOutputSpec(TraitedSpec):
    transforms = traits.List(File(exists=True), desc="T1w points -> EPI points (ANTs)")


class CoregisterEpi(SimpleInterface):
    """Rigid EPI -> T1w registration with Mattes mutual information (ANTs).

    The stages are antspyx's ``type_of_transform="Rigid"`` (:data:`COREG_STAGES`), run
    through :class:`~neurofusion.preprocessing.ants_interfaces.Registration` with one ITK
    thread: Mattes MI accumulates its joint histogram per thread in a varying order, so
    only a single thread gives the same transform on every run (measured: in-process
    multithreaded runs differed by ~1e-3 in the resampled BOLD). EPI and T1w come from
    one session in one scanner space, so the search starts from the identity rather than
    from the centres of mass, which differ between a partial EPI field of view and a
    whole-head T1w.

    The T1w brain is registered on a copy no finer than ``t1w_spacing_mm`` (2 mm,
    :func:`~neurofusion.preprocessing.image_interfaces.save_downsampled`): the EPI has 3 mm
    voxels, and on the study's 1 mm T1w the full-resolution level took 43 of the 119 s of
    a subject's functional workflow. On three demo subjects (1.6 mm T1w) the 2 mm copy
    moved the brain by 0.03-0.12 mm RMS against the full-resolution transform, in 7 s
    instead of 10 s.
    """

    input_spec = _CoregisterInputSpec
    output_spec = _CoregisterOutputSpec

    def _run_interface(self, runtime):
        cwd = Path(runtime.cwd)
        t1w = nib.load(self.inputs.t1w_file)
        mask = np.asarray(nib.load(self.inputs.t1w_mask).dataobj) > 0
        brain = nib.Nifti1Image(np.asarray(t1w.dataobj, dtype=np.float32) * mask, t1w.affine)
        brain_file = save_downsampled(brain, self.inputs.t1w_spacing_mm, cwd / "t1w_brain.nii.gz")
        identity = str(cwd / "identity.mat")
        ants.write_transform(ants.create_ants_transform(dimension=3), identity)
        registration = Registration(
            fixed_image=brain_file,
            moving_image=self.inputs.boldref_file,
            initial_transform=identity,
            stages=COREG_STAGES,
            random_seed=ants_seed(self.inputs.seed),
            num_threads=1,
        ).run(cwd=str(cwd))
        self._results["transforms"] = [registration.outputs.affine]
        return runtime


class _RegionInputSpec(BaseInterfaceInputSpec):
    target_file = File(exists=True, mandatory=True, desc="output grid")
    t1w_mask = File(exists=True, mandatory=True)
    t1w2target = InputMultiObject(File(exists=True), mandatory=True, desc="ANTs transforms")
    t1w2target_invert = traits.List(traits.Bool, mandatory=True)


def _carried_brain_args(inputs: _RegionInputSpec) -> dict:
    """The :func:`.masks.carried_brain` arguments of a :class:`_RegionInputSpec`."""
    return {
        "target": nib.load(inputs.target_file),
        "t1w_mask": nib.load(inputs.t1w_mask),
        "transforms": inputs.t1w2target,
        "invert": inputs.t1w2target_invert,
    }


class _RegionOutputSpec(TraitedSpec):
    region_file = File(exists=True, desc="brain plus a margin on the output grid")


class SamplingRegion(SimpleInterface):
    """The output voxels :class:`ResampleBold` samples (see :func:`.masks.sampling_region`)."""

    input_spec = _RegionInputSpec
    output_spec = _RegionOutputSpec

    def _run_interface(self, runtime):
        region = sampling_region(**_carried_brain_args(self.inputs))
        self._results["region_file"] = _save(region, "sampling_region.nii.gz")
        return runtime


class _MasksInputSpec(_RegionInputSpec):
    boldref_file = File(exists=True, mandatory=True, desc="mean BOLD on the output grid")
    probseg = InputMultiObject(File(exists=True), mandatory=True, desc="GM, WM, CSF (native)")


class _MasksOutputSpec(TraitedSpec):
    brain_mask = File(exists=True, desc="T1w brain mask covered by the EPI field of view")
    gm_mask = File(exists=True, desc="grey matter (probability >= 0.5) in the brain mask")
    wm_mask = File(exists=True, desc="eroded white matter")
    csf_mask = File(exists=True, desc="eroded CSF")
    compcor_mask = File(exists=True, desc="eroded WM + CSF")


class BoldMasks(SimpleInterface):
    """Brain, GM and eroded WM/CSF masks on the output grid (see :mod:`.masks`)."""

    input_spec = _MasksInputSpec
    output_spec = _MasksOutputSpec

    def _run_interface(self, runtime):
        masks = bold_masks(
            boldref=nib.load(self.inputs.boldref_file),
            probseg=[nib.load(p) for p in self.inputs.probseg],
            **_carried_brain_args(self.inputs),
        )
        for name, img in masks.items():
            self._results[f"{name}_mask"] = _save(img, f"{name}_mask.nii.gz")
        return runtime


class _ReportsInputSpec(BaseInterfaceInputSpec):
    confounds_file = File(exists=True, mandatory=True)
    bold_file = File(exists=True, mandatory=True, desc="BOLD on the output grid")
    boldref_file = File(exists=True, mandatory=True)
    tsnr_file = File(exists=True, mandatory=True)
    brain_mask = File(exists=True, mandatory=True)
    gm_mask = File(exists=True, mandatory=True)
    template_mask = File(exists=True, mandatory=True)
    tr = traits.Float(mandatory=True)


class _ReportsOutputSpec(TraitedSpec):
    qc_file = File(exists=True, desc="QC numbers (JSON)")
    motion_png = File(exists=True)
    carpet_png = File(exists=True)
    registration_png = File(exists=True)


class FuncReports(SimpleInterface):
    """QC numbers and figures (see :mod:`.bold_reports`)."""

    input_spec = _ReportsInputSpec
    output_spec = _ReportsOutputSpec

    def _run_interface(self, runtime):
        confounds = pd.read_csv(self.inputs.confounds_file, sep="\t")

        def load_mask(path):
            return np.asarray(nib.load(path).dataobj) > 0

        qc = func_qc(
            confounds,
            np.asarray(nib.load(self.inputs.tsnr_file).dataobj),
            load_mask(self.inputs.gm_mask),
            load_mask(self.inputs.brain_mask),
            load_mask(self.inputs.template_mask),
        )
        cwd = Path.cwd()
        write_json(cwd / "qc.json", qc)
        motion_figure(confounds, cwd / "motion.png")
        carpet_figure(
            nib.load(self.inputs.bold_file),
            nib.load(self.inputs.brain_mask),
            self.inputs.tr,
            cwd / "carpet.png",
        )
        registration_figure(
            nib.load(self.inputs.boldref_file),
            nib.load(self.inputs.template_mask),
            cwd / "registration.png",
        )
        self._results.update(
            qc_file=str(cwd / "qc.json"),
            motion_png=str(cwd / "motion.png"),
            carpet_png=str(cwd / "carpet.png"),
            registration_png=str(cwd / "registration.png"),
        )
        return runtime
