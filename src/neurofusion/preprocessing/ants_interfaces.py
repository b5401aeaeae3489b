"""nipype interfaces around the ANTs programs that ship compiled inside ``antspyx``.

No ANTs command-line binaries are installed, but ``antspyx`` links the same C++ programs
(``antsRegistration``, ``antsApplyTransforms``, ``N4BiasFieldCorrection``, ``Atropos``)
and exposes each as a library function taking the program's argument list. These
interfaces build exactly the arguments the command-line tools take, call the function in
process, and write every result to files in the node's working directory, so nipype can
cache, hash and resume them like any other interface.

Transform conventions (ITK/ANTs)
--------------------------------
ITK transforms map *points* from the fixed (output) space to the moving (input) space and
live in LPS physical coordinates (mm). ``antsRegistration`` run with ``fixed=template``,
``moving=subject`` therefore writes

* ``0GenericAffine.mat`` -- an ``AffineTransform_float_3_3``: template point -> subject
  point (the affine part),
* ``1Warp.nii.gz`` -- a displacement field on the template grid (LPS vectors, mm) that,
  together with the affine, maps the template to the subject,
* ``1InverseWarp.nii.gz`` -- its inverse, on the same grid.

``antsApplyTransforms`` (and ``ants.apply_transforms``) take a *stack* of transforms,
listed last-applied-first to the output points: ``transformlist=[warp, affine]`` resamples
a subject image onto the template grid; ``transformlist=[affine, inverse_warp]`` with
``whichtoinvert=[True, False]`` resamples a template image onto the subject's grid. The
same ``.mat`` serves both directions (inverted at run time), as in ANTs itself.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    OutputMultiObject,
    SimpleInterface,
    TraitedSpec,
    traits,
)

LOGGER = logging.getLogger("neurofusion.preprocessing.ants")

#: Interpolators of antsApplyTransforms accepted by :class:`ApplyTransforms`.
INTERPOLATORS = (
    "Linear",
    "NearestNeighbor",
    "GenericLabel",
    "LanczosWindowedSinc",
    "BSpline",
)


def run_ants(program: str, args: list, threads: int | None = None) -> None:
    """Run one ANTs program compiled into antspyx with its command-line arguments.

    ITK reads its thread count once per process. With ``threads=None`` the program runs
    in this process, with the thread count set by
    :func:`~neurofusion.preprocessing.threads.limit_threads`; with an integer it runs in a
    child Python process (``python -m neurofusion.preprocessing.ants_interfaces PROGRAM
    ARGS...``, about 2 s to start) whose ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` is
    ``threads``, which lets a node use fewer threads than the job when reproducibility
    requires it (see :class:`Registration`).

    Parameters
    ----------
    program : str
        ``antsRegistration``, ``antsApplyTransforms``, ``N4BiasFieldCorrection`` or
        ``Atropos``.
    args : list
        The program's arguments, exactly as on its command line (converted to ``str``).
    threads : int, optional
        ITK threads of a child process; ``None`` runs in process.

    Raises
    ------
    RuntimeError
        When the program fails; the message holds the command line (and, for a child
        process, its output).
    """
    argv = [str(a) for a in args]
    command = " ".join([program, *argv])
    LOGGER.info("%s (threads=%s)", command, threads or "process")
    if threads is None:
        from ants.internal import get_lib_fn

        status = get_lib_fn(program)(argv)
        if status != 0:
            raise RuntimeError(f"{program} failed (status {status}): {command}")
        return
    env = {**os.environ, "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS": str(max(1, threads))}
    process = subprocess.run(
        [sys.executable, "-m", __name__, program, *argv],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if process.returncode != 0:
        output = (process.stdout + process.stderr)[-4000:]
        raise RuntimeError(f"{program} failed (status {process.returncode}): {command}\n{output}")


def ants_seed(seed: int) -> int:
    """The ``--random-seed`` for a workflow seed: ``seed + 1``.

    antsRegistration reads ``--random-seed 0`` as "seed from the system clock", which would
    make seed 0 (our default) irreproducible; any seed >= 0 is shifted by one.
    """
    if seed < 0:
        raise ValueError(f"seed must be >= 0, not {seed}")
    return seed + 1


def _float32_copy(path: str | Path, out: Path) -> Path:
    """Rewrite an image as float32 (ANTs writes double for some outputs)."""
    img = nib.load(str(path))
    data = np.asarray(img.dataobj, dtype=np.float32)
    nib.save(nib.Nifti1Image(data, img.affine, img.header), str(out))
    return out


class _N4InputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3D image to correct")
    mask_file = File(exists=True, desc="voxels used to estimate the field (default: all)")
    shrink_mm = traits.Float(
        6.0, usedefault=True, desc="fit the field on a grid of about this spacing (mm)"
    )
    n_iterations = traits.List(
        traits.Int, [30, 20, 10], usedefault=True, desc="iterations per fitting level"
    )
    convergence_threshold = traits.Float(1e-6, usedefault=True)
    bspline_distance_mm = traits.Float(200.0, usedefault=True, desc="B-spline mesh spacing")
    num_threads = traits.Int(1, usedefault=True, desc="ITK threads (child process)")


class _N4OutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="bias-corrected image, float32")
    bias_image = File(exists=True, desc="estimated multiplicative bias field, float32")


class N4BiasFieldCorrection(SimpleInterface):
    """N4 bias-field correction (Tustison et al. 2010), ``N4BiasFieldCorrection``.

    The shrink factor is derived from the voxel size (``round(shrink_mm / min spacing)``)
    so that the field is fitted on about the same 6 mm grid whatever the acquisition:
    the cost of N4 (about 6 microseconds per fitted voxel and iteration here) grows with
    the number of fitted voxels, not with the output grid, and a 200 mm B-spline mesh
    needs no finer sampling.

    It runs in a child process with ``num_threads`` ITK threads (default one): its result
    changes in the fifth digit with the thread count, and registration magnifies that, so
    one thread keeps the anatomical outputs independent of the job's threads.
    """

    input_spec = _N4InputSpec
    output_spec = _N4OutputSpec

    def _run_interface(self, runtime):
        img = nib.load(self.inputs.in_file)
        spacing = min(img.header.get_zooms()[:3])
        shrink = max(1, round(self.inputs.shrink_mm / spacing))
        cwd = Path(runtime.cwd)
        corrected, bias = cwd / "n4_corrected.nii.gz", cwd / "n4_bias.nii.gz"
        iterations = "x".join(str(i) for i in self.inputs.n_iterations)
        args = [
            "-d", 3,
            "-i", self.inputs.in_file,
            "-s", shrink,
            "-c", f"[{iterations},{self.inputs.convergence_threshold:g}]",
            "-b", f"[{self.inputs.bspline_distance_mm:g}]",
            "-o", f"[{corrected},{bias}]",
        ]  # fmt: skip
        if self.inputs.mask_file:
            args += ["-x", self.inputs.mask_file]
        run_ants("N4BiasFieldCorrection", args, self.inputs.num_threads)
        self._results["out_file"] = str(_float32_copy(corrected, corrected))
        self._results["bias_image"] = str(_float32_copy(bias, bias))
        return runtime


class _RegistrationInputSpec(BaseInterfaceInputSpec):
    num_threads = traits.Int(1, usedefault=True, desc="ITK threads (child process)")
    fixed_image = File(exists=True, mandatory=True, desc="reference (e.g. template) image")
    moving_image = File(exists=True, mandatory=True, desc="image to align (e.g. subject)")
    fixed_mask = File(exists=True, desc="metric mask in fixed space (last stage only)")
    initial_transform = File(
        exists=True, desc="ITK transform to start from; default: align centres of mass"
    )
    stages = traits.List(
        traits.Dict,
        mandatory=True,
        desc="one dict per stage with keys transform (e.g. 'Rigid[0.1]', 'SyN[0.1,3,0]'), "
        "metric (e.g. 'MI', 'CC'), metric_params (after the two images, e.g. '1,32,Regular,"
        "0.25'), iterations (list), shrink (list), sigmas_vox (list)",
    )
    convergence_threshold = traits.Float(1e-6, usedefault=True)
    convergence_window = traits.Int(10, usedefault=True)
    random_seed = traits.Range(
        low=1, value=1, usedefault=True, desc="seed of metric sampling (ANTs: 0 = clock)"
    )
    write_warped = traits.Bool(False, usedefault=True, desc="also write the warped moving image")


class _RegistrationOutputSpec(TraitedSpec):
    affine = File(exists=True, desc="ITK affine, fixed -> moving points (0GenericAffine.mat)")
    warp = File(desc="displacement field of the last SyN stage (absent for linear stages)")
    inverse_warp = File(desc="its inverse")
    forward_transforms = OutputMultiObject(
        File(exists=True), desc="moving image -> fixed grid, antsApplyTransforms order"
    )
    reverse_transforms = OutputMultiObject(
        File(exists=True), desc="fixed image -> moving grid, antsApplyTransforms order"
    )
    reverse_invert_flags = OutputMultiObject(traits.Bool, desc="whichtoinvert for the reverse")
    warped_image = File(desc="moving image resampled on the fixed grid")


class Registration(SimpleInterface):
    """``antsRegistration`` with explicit stages, single precision and a fixed seed.

    Outputs are collapsed (``--collapse-output-transforms 1``): one affine (the initial
    transform composed with every linear stage) and, when a SyN stage runs, one warp and
    its inverse. See the module docstring for the transform conventions.

    Reproducibility: with a fixed seed, stages using GC or CC give bit-identical results
    for any fixed number of threads; Mattes MI (``MI``) does only with one thread (its
    joint histogram is accumulated per thread in a varying order), so run MI stages with
    ``num_threads=1``.
    """

    input_spec = _RegistrationInputSpec
    output_spec = _RegistrationOutputSpec

    def _run_interface(self, runtime):
        cwd = Path(runtime.cwd)
        prefix = cwd / "reg_"
        fixed, moving = self.inputs.fixed_image, self.inputs.moving_image
        warped = cwd / "reg_warped.nii.gz"
        output = f"[{prefix},{warped}]" if self.inputs.write_warped else str(prefix)
        initial = self.inputs.initial_transform or f"[{fixed},{moving},1]"
        args = [
            "--dimensionality", 3,
            "--float", 1,
            "--collapse-output-transforms", 1,
            "--random-seed", self.inputs.random_seed,
            "--output", output,
            "--initial-moving-transform", initial,
            "--winsorize-image-intensities", "[0.005,0.995]",
        ]  # fmt: skip
        threshold = f"{self.inputs.convergence_threshold:g},{self.inputs.convergence_window}"
        for number, stage in enumerate(self.inputs.stages, start=1):
            args += [
                "--transform", stage["transform"],
                "--metric", f"{stage['metric']}[{fixed},{moving},{stage['metric_params']}]",
                "--convergence", f"[{'x'.join(map(str, stage['iterations']))},{threshold}]",
                "--shrink-factors", "x".join(map(str, stage["shrink"])),
                "--smoothing-sigmas", "x".join(map(str, stage["sigmas_vox"])) + "vox",
            ]  # fmt: skip
            last = number == len(self.inputs.stages)
            mask = self.inputs.fixed_mask if (last and self.inputs.fixed_mask) else "NULL"
            args += ["--masks", f"[{mask},NULL]"]
        run_ants("antsRegistration", args, self.inputs.num_threads)
        affine = cwd / "reg_0GenericAffine.mat"
        warp, inverse = cwd / "reg_1Warp.nii.gz", cwd / "reg_1InverseWarp.nii.gz"
        self._results["affine"] = str(affine)
        if warp.exists():
            self._results["warp"] = str(_float32_copy(warp, warp))
            self._results["inverse_warp"] = str(_float32_copy(inverse, inverse))
            self._results["forward_transforms"] = [str(warp), str(affine)]
            self._results["reverse_transforms"] = [str(affine), str(inverse)]
            self._results["reverse_invert_flags"] = [True, False]
        else:
            self._results["forward_transforms"] = [str(affine)]
            self._results["reverse_transforms"] = [str(affine)]
            self._results["reverse_invert_flags"] = [True]
        if self.inputs.write_warped:
            self._results["warped_image"] = str(_float32_copy(warped, warped))
        return runtime


class _ApplyTransformsInputSpec(BaseInterfaceInputSpec):
    input_image = File(exists=True, mandatory=True, desc="3D image (or 4D with time_series)")
    reference_image = File(exists=True, mandatory=True, desc="grid of the output")
    transforms = InputMultiObject(
        File(exists=True), mandatory=True, desc="antsApplyTransforms order (last applied first)"
    )
    invert_transform_flags = InputMultiObject(traits.Bool, desc="whichtoinvert; default none")
    interpolation = traits.Enum(*INTERPOLATORS, usedefault=True)
    time_series = traits.Bool(False, usedefault=True, desc="input is 4D: resample each volume")
    clip_negative = traits.Bool(False, usedefault=True, desc="set values < 0 (sinc ringing) to 0")
    out_name = traits.Str("resampled.nii.gz", usedefault=True)


class _ApplyTransformsOutputSpec(TraitedSpec):
    output_image = File(exists=True, desc="float32 image on the reference grid")


class ApplyTransforms(SimpleInterface):
    """``antsApplyTransforms``: resample an image through a stack of ITK transforms once."""

    input_spec = _ApplyTransformsInputSpec
    output_spec = _ApplyTransformsOutputSpec

    def _run_interface(self, runtime):
        out = Path(runtime.cwd) / self.inputs.out_name
        apply_transforms(
            self.inputs.input_image,
            self.inputs.reference_image,
            list(self.inputs.transforms),
            out,
            invert=list(self.inputs.invert_transform_flags or []),
            interpolation=self.inputs.interpolation,
            time_series=self.inputs.time_series,
            clip_negative=self.inputs.clip_negative,
        )
        self._results["output_image"] = str(out)
        return runtime


def apply_transforms(
    input_image: str | Path,
    reference_image: str | Path,
    transforms: list[str | Path],
    out: str | Path,
    *,
    invert: list[bool] | None = None,
    interpolation: str = "Linear",
    time_series: bool = False,
    clip_negative: bool = False,
) -> Path:
    """Resample ``input_image`` onto ``reference_image``'s grid with antsApplyTransforms.

    Parameters
    ----------
    input_image, reference_image : path
        NIfTI files; the input is 3D, or 4D when ``time_series`` (each volume resampled
        through the same transforms).
    transforms : list of path
        ITK transforms, last-applied-first (see the module docstring).
    out : path
        Output NIfTI, written as float32.
    invert : list of bool, optional
        Which transforms to invert (only affine ``.mat`` files can be inverted).
    interpolation : str
        One of :data:`INTERPOLATORS`.
    time_series : bool
        Treat the input as a time series (``-e 3``).
    clip_negative : bool
        Zero negative values (ringing of the windowed-sinc interpolator).

    Returns
    -------
    Path
        ``out``.
    """
    if interpolation not in INTERPOLATORS:
        raise ValueError(f"interpolation must be one of {INTERPOLATORS}, not {interpolation!r}")
    invert = list(invert or [False] * len(transforms))
    if len(invert) != len(transforms):
        raise ValueError("invert needs one flag per transform")
    args = [
        "--dimensionality", 3,
        "--input-image-type", 3 if time_series else 0,
        "--float", 1,
        "--input", input_image,
        "--reference-image", reference_image,
        "--output", out,
        "--interpolation", interpolation,
    ]  # fmt: skip
    for transform, flag in zip(transforms, invert, strict=True):
        args += ["--transform", f"[{transform},{int(flag)}]"]
    run_ants("antsApplyTransforms", args)
    img = nib.load(str(out))
    data = np.asarray(img.dataobj, dtype=np.float32)
    if clip_negative:
        np.maximum(data, 0, out=data)
    header = img.header.copy()
    header.set_data_dtype(np.float32)
    nib.save(nib.Nifti1Image(data, img.affine, header), str(out))
    return Path(out)


class _AtroposInputSpec(BaseInterfaceInputSpec):
    num_threads = traits.Int(1, usedefault=True, desc="ITK threads (child process)")
    in_file = File(exists=True, mandatory=True, desc="bias-corrected T1")
    mask_file = File(exists=True, mandatory=True, desc="voxels to classify")
    prior_images = InputMultiObject(
        File(exists=True), mandatory=True, desc="one prior probability map per class"
    )
    prior_weight = traits.Float(0.25, usedefault=True, desc="0: priors only initialise")
    mrf_smoothing = traits.Float(0.1, usedefault=True, desc="Markov random field weight")
    n_iterations = traits.Int(5, usedefault=True)
    convergence_threshold = traits.Float(1e-3, usedefault=True)


class _AtroposOutputSpec(TraitedSpec):
    posteriors = OutputMultiObject(File(exists=True), desc="posterior maps, prior order")
    segmentation = File(exists=True, desc="label image (1..n, prior order; 0 outside)")


class Atropos(SimpleInterface):
    """``Atropos`` (Avants et al. 2011): Gaussian mixture + MRF, initialised by priors.

    Classes come out in the order of ``prior_images``; posteriors are float32 and zero
    outside ``mask_file``. Atropos seeds its random generator from the clock unless told
    otherwise; ``--use-random-seed 0`` fixes it, and the posteriors are then
    bit-reproducible for any number of threads.
    """

    input_spec = _AtroposInputSpec
    output_spec = _AtroposOutputSpec

    def _run_interface(self, runtime):
        cwd = Path(runtime.cwd)
        n_classes = len(self.inputs.prior_images)
        for k, prior in enumerate(self.inputs.prior_images, start=1):
            target = cwd / f"prior{k:02d}.nii.gz"
            if target.exists() or target.is_symlink():
                target.unlink()
            os.symlink(prior, target)
        labels = cwd / "atropos_seg.nii.gz"
        args = [
            "-d", 3,
            "-a", self.inputs.in_file,
            "-x", self.inputs.mask_file,
            "-i", f"PriorProbabilityImages[{n_classes},{cwd / 'prior%02d.nii.gz'},"
                  f"{self.inputs.prior_weight:g}]",
            "-m", f"[{self.inputs.mrf_smoothing:g},1x1x1]",
            "-c", f"[{self.inputs.n_iterations},{self.inputs.convergence_threshold:g}]",
            "-k", "Gaussian",
            "-r", 0,
            "-p", "Socrates[1]",
            "-o", f"[{labels},{cwd / 'posterior%02d.nii.gz'}]",
        ]  # fmt: skip
        run_ants("Atropos", args, self.inputs.num_threads)
        posteriors = [cwd / f"posterior{k:02d}.nii.gz" for k in range(1, n_classes + 1)]
        self._results["posteriors"] = [str(_float32_copy(p, p)) for p in posteriors]
        self._results["segmentation"] = str(labels)
        return runtime


def _main(argv: list[str]) -> int:
    """Entry point of :func:`run_ants`' child process: ``PROGRAM ARGS...``."""
    from ants.internal import get_lib_fn

    return int(get_lib_fn(argv[0])(argv[1:]))


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
