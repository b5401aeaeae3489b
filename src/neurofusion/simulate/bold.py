"""Resting-state BOLD: the head's EPI signal, moving, sampled slice by slice.

The head's EPI signal is built once on the EPI grid widened by a margin (the "object"):
each voxel holds the voxel-averaged fractions of every tissue class (2 x 2 x 2 samples per
voxel), as four channels: the total baseline ``M0`` (:data:`~.anatomy.EPI_INTENSITY`) and
the GM, WM and CSF parts of it, plus the AAL region of the voxel (unlabelled voxels take
the nearest region, so that grey matter just outside the atlas still carries a signal).

Volume n, slice k is acquired at ``t = n TR + SliceTiming[k]`` with the head at pose
``M_n``: each voxel centre p is carried to the head's reference frame, ``inv(M_n) p``, the
object is interpolated there (trilinear; region: nearest voxel) and its signal is evaluated
at t:

    S = M0 (1 + A_o e) + G (a s_r(t) + g_GM(t) + (A_GM - A_o) e)
        + W (g_WM(t) + (A_WM - A_o) e) + C (g_CSF(t) + (A_CSF - A_o) e)

with ``s_r`` the region's unit-variance BOLD course, ``a`` the subject's BOLD amplitude
(1.5-2.5 % of grey-matter baseline), ``g`` the physiological modulations, ``e`` the
approach to steady state ``exp(-n / tau)`` that makes dummy volumes bright (``A`` is larger
for long-T1 tissue). The result is multiplied by the coil sensitivity (fixed in the
scanner) and the scanner drift, and Rician noise is added.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage as ndi

from neurofusion.simulate.anatomy import (
    EPI_INTENSITY,
    TISSUES,
    Anatomy,
    Sample,
    rician,
    smooth_gain,
    to_uint16,
)
from neurofusion.simulate.function import Physiology, RegionSignals
from neurofusion.simulate.geometry import Grid, block_mean, nearest, trilinear
from neurofusion.simulate.motion import Motion

#: Widening of the object grid beyond the field of view (EPI voxels per side).
OBJECT_MARGIN = 2
#: Samples per voxel and axis when averaging tissue fractions into EPI voxels.
OVERSAMPLING = 2
#: Extra brightness of the first volume before steady state, for GM, WM, CSF and the rest.
SATURATION_EXCESS = np.array([0.8, 0.5, 2.0, 0.4], dtype=np.float32)
#: Decay of that excess (volumes).
SATURATION_VOLUMES = 1.5
#: Rician noise SD relative to grey-matter baseline (temporal SNR about 50 before physiology).
EPI_NOISE = 0.02
#: Stored value of grey-matter baseline (12-bit DICOM).
EPI_SCALE = 600.0
#: Range of the BOLD standard deviation in pure grey matter (fraction of baseline).
BOLD_AMPLITUDE = (0.015, 0.025)
#: SD of the log coil-sensitivity polynomial coefficients.
COIL_SD = 0.1


@dataclasses.dataclass(frozen=True)
class Scanner:
    """Subject-level acquisition parameters of the BOLD run.

    Attributes
    ----------
    bold_amplitude : float
        SD of the BOLD signal in pure grey matter (fraction of baseline).
    coil : numpy.ndarray
        (9,) log coil-sensitivity coefficients (see :func:`~.anatomy.smooth_gain`).
    """

    bold_amplitude: float
    coil: np.ndarray


def draw_scanner(rng: np.random.Generator) -> Scanner:
    """BOLD amplitude and coil sensitivity of a subject (its ``scanner`` stream)."""
    return Scanner(float(rng.uniform(*BOLD_AMPLITUDE)), COIL_SD * rng.standard_normal(9))


@dataclasses.dataclass(frozen=True)
class EpiObject:
    """The head's EPI signal model on the widened EPI grid, and the EPI-space truth.

    Attributes
    ----------
    grid : Grid
        EPI grid widened by :data:`OBJECT_MARGIN` voxels on each side.
    channels : numpy.ndarray
        (4, ni, nj, nk) float32 M0, GM part, WM part, CSF part of the baseline signal.
    regions : numpy.ndarray
        (ni, nj, nk) int16 AAL region of each voxel, gaps filled with the nearest region.
    truth : Sample
        On the EPI grid itself: voxel-averaged tissue fractions, AAL label at the voxel
        centre (unfilled), brain fraction.
    """

    grid: Grid
    channels: np.ndarray
    regions: np.ndarray
    truth: Sample


def epi_object(anatomy: Anatomy, bold_grid: Grid) -> EpiObject:
    """Build the object of one subject for the EPI grid ``bold_grid`` (reference pose)."""
    grid = bold_grid.oversampled(1, OBJECT_MARGIN)
    fine = anatomy.sample_grid(grid.oversampled(OVERSAMPLING, 0))
    fractions = block_mean(fine.fractions, OVERSAMPLING)
    brain = block_mean(fine.brain, OVERSAMPLING)
    centres = anatomy.sample_grid(grid)
    gm, wm, csf = (TISSUES.index(name) for name in ("GM", "WM", "CSF"))
    channels = np.stack(
        [
            np.tensordot(EPI_INTENSITY, fractions, axes=1),
            fractions[gm] * EPI_INTENSITY[gm],
            fractions[wm] * EPI_INTENSITY[wm],
            fractions[csf] * EPI_INTENSITY[csf],
        ]
    )
    nearest_region = ndi.distance_transform_edt(
        centres.labels == 0, sampling=grid.zooms, return_distances=False, return_indices=True
    )
    regions = centres.labels[tuple(nearest_region)]
    m = OBJECT_MARGIN
    inner = (slice(m, -m),) * 3
    truth = Sample(fractions[(slice(None), *inner)], centres.labels[inner], brain[inner])
    return EpiObject(grid, np.ascontiguousarray(channels), regions, truth)


def synthesize_bold(
    obj: EpiObject,
    bold_grid: Grid,
    signals: RegionSignals,
    physiology: Physiology,
    motion: Motion,
    slice_times_s: np.ndarray,
    tr_s: float,
    scanner: Scanner,
    rng: np.random.Generator,
) -> np.ndarray:
    """Acquire the run.

    Parameters
    ----------
    obj : EpiObject
    bold_grid : Grid
        (ni, nj, nk) EPI grid; k is the slice axis.
    signals : RegionSignals
    physiology : Physiology
    motion : Motion
        One pose per acquired volume (dummies included).
    slice_times_s : numpy.ndarray
        (nk,) acquisition time of each slice within the TR (s).
    tr_s : float
        Repetition time (s).
    scanner : Scanner
        BOLD amplitude and coil sensitivity.
    rng : numpy.random.Generator
        The subject's ``bold_noise`` stream.

    Returns
    -------
    numpy.ndarray
        (ni, nj, nk, n_volumes) uint16 stored values.
    """
    world = bold_grid.world_coordinates()
    coil = smooth_gain(scanner.coil, bold_grid).reshape(-1)
    reach = motion.max_displacement_mm(150.0) / bold_grid.zooms.min()
    inside = ndi.binary_dilation(
        obj.channels[0][(slice(OBJECT_MARGIN, -OBJECT_MARGIN),) * 3] > 1e-3,
        iterations=int(np.ceil(reach)) + 1,
    ).reshape(-1)
    points = world[:, inside]
    slice_of = np.broadcast_to(np.arange(bold_grid.shape[2]), bold_grid.shape).reshape(-1)[inside]
    gain = coil[inside]
    to_object = np.linalg.inv(obj.grid.affine)
    n_regions = signals.bold.shape[1] + 1
    n_volumes = len(motion.parameters)
    out = np.empty((*bold_grid.shape, n_volumes), dtype=np.uint16)
    for n, pose in enumerate(motion.matrices()):
        matrix = to_object @ np.linalg.inv(pose)
        coords = matrix[:3, :3].astype(np.float32) @ points + matrix[:3, 3:].astype(np.float32)
        m0, gm, wm, csf = trilinear(obj.channels, coords)
        regions = nearest(obj.regions, coords)
        times = n * tr_s + slice_times_s
        course = np.zeros((len(times), n_regions), dtype=np.float32)
        course[:, 1:] = scanner.bold_amplitude * signals.at(times)
        physio = physiology.modulation(times)
        excess = SATURATION_EXCESS * np.float32(np.exp(-n / SATURATION_VOLUMES))
        value = m0 * (1 + excess[3])
        value += gm * (course[slice_of, regions] + physio[0, slice_of] + (excess[0] - excess[3]))
        value += wm * (physio[1, slice_of] + (excess[1] - excess[3]))
        value += csf * (physio[2, slice_of] + (excess[2] - excess[3]))
        value *= gain * np.float32(physiology.drift(n * tr_s + tr_s / 2))
        volume = np.zeros(inside.shape, dtype=np.float32)
        volume[inside] = value
        noisy = rician(volume.reshape(bold_grid.shape), EPI_NOISE, rng)
        out[..., n] = to_uint16(noisy, EPI_SCALE)
    return out
