"""Subject anatomy: MNI tissue maps carried into the scanner, with a head around the brain.

The MNI152 (ICBM 2009a) grey-matter, white-matter and CSF priors shipped with nilearn are
sharpened (``p**2`` renormalised, so partial volume stays at tissue borders) and sampled
through the subject's :class:`~neurofusion.simulate.deformation.Deformation`. Around the
skull-stripped template brain the simulator builds a head from shells at a given distance
from the brain mask (thickness modulated smoothly per subject): a CSF rim, the skull's
inner table, diploic marrow and outer table, galea/muscle, subcutaneous fat and skin.

Per subject, grey matter in every AAL region is scaled by a random factor (between-subject
SD :data:`GM_REGION_SD`); patients lose ``effect_size`` SDs more in the regions of
:data:`GM_TARGET_REGIONS`. Grey matter that is lost becomes CSF (atrophy); grey matter that
is gained comes out of CSF where there is some.

Tissue classes, in the order of every ``fractions`` array: :data:`TISSUES`.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

from neurofusion import atlas, templates
from neurofusion.simulate.deformation import Deformation, random_deformation
from neurofusion.simulate.geometry import Grid, apply_affine, nearest, trilinear
from neurofusion.simulate.settings import PATIENT_GROUP, SimulationSettings
from neurofusion.simulate.streams import subject_rng

#: Tissue classes: brain tissues first, then the layers of the head outside the brain.
TISSUES = ("GM", "WM", "CSF", "bone", "marrow", "muscle", "fat", "skin")
#: Relative MPRAGE (T1-weighted) signal of each tissue class (WM = 1).
T1_INTENSITY = np.array([0.62, 1.0, 0.2, 0.05, 0.55, 0.45, 1.25, 0.5], dtype=np.float32)
#: Relative T2*-weighted gradient-echo EPI signal (TE 30 ms, fat-saturated; GM = 1).
EPI_INTENSITY = np.array([1.0, 0.72, 1.45, 0.03, 0.12, 0.55, 0.12, 0.4], dtype=np.float32)
#: Head layers outside the brain mask and their outer boundary (mm from the brain).
SHELLS = (
    ("CSF", 2.5),
    ("bone", 4.0),
    ("marrow", 6.0),
    ("bone", 7.5),
    ("muscle", 9.5),
    ("fat", 13.0),
    ("skin", 14.5),
)
#: Between-subject SD of regional grey-matter density (fraction).
GM_REGION_SD = 0.05
#: AAL regions where patients lose grey matter.
GM_TARGET_REGIONS = ("Pallidum_L", "Pallidum_R", "Precentral_L", "Precentral_R")
#: Exponent of the tissue-prior sharpening.
SHARPENING = 2.0
#: Rician noise SD of the T1 relative to white matter.
T1_NOISE = 0.02
#: SD of the log bias-field polynomial coefficients (T1 at 3 T: about +-20 %).
BIAS_SD = 0.08
#: Stored T1 value of white matter (12-bit DICOM).
T1_SCALE = 1000.0
#: Points sampled per chunk (bounds memory on the 10-million-voxel paper T1).
CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class MniModel:
    """Template-space inputs of the simulator (subject-independent).

    Attributes
    ----------
    affine : numpy.ndarray
        (4, 4) voxel -> MNI mm of the 1 mm template grid.
    stack : numpy.ndarray
        (4, 197, 233, 189) float32: sharpened GM, WM, CSF probabilities and the distance
        (mm) from the brain mask.
    labels : numpy.ndarray
        (197, 233, 189) int16 AAL-116 labels on the template grid (0 = none).
    """

    affine: np.ndarray
    stack: np.ndarray
    labels: np.ndarray


@lru_cache(maxsize=1)
def mni_model() -> MniModel:
    """Load and prepare the template (once per process, about 5 s and 450 MB)."""
    priors = templates.mni_tissue_priors(1)
    affine = priors["GM"].affine
    tissues = np.stack([np.asarray(priors[k].dataobj, np.float32) for k in ("GM", "WM", "CSF")])
    total = tissues.sum(axis=0)
    sharp = tissues**SHARPENING
    norm = sharp.sum(axis=0)
    np.divide(sharp * total, norm, out=tissues, where=norm > 0)
    brain = total >= 0.5
    distance = ndi.distance_transform_edt(~brain).astype(np.float32)
    stack = np.concatenate([tissues, distance[None]])
    aal = atlas.aal_image()
    to_aal = np.linalg.inv(aal.affine) @ affine
    labels = ndi.affine_transform(
        np.asarray(aal.dataobj), to_aal, output_shape=brain.shape, order=0, mode="constant"
    ).astype(np.int16)
    return MniModel(affine, stack, labels)


def region_index(names: tuple[str, ...]) -> np.ndarray:
    """AAL label values of the named regions; (len(names),) int."""
    lookup = {name: value for value, name in atlas.aal_labels()}
    return np.array([lookup[name] for name in names])


@dataclasses.dataclass(frozen=True)
class Sample:
    """Anatomy at a set of points.

    Attributes
    ----------
    fractions : numpy.ndarray
        (8, ...) float32 volume fraction of each class of :data:`TISSUES` (the rest is air);
        the trailing shape is (N,) for points or (ni, nj, nk) for a grid.
    labels : numpy.ndarray
        (...) int16 AAL label (nearest neighbour), 0 outside the atlas.
    brain : numpy.ndarray
        (...) float32 brain-mask fraction (GM + WM + CSF inside the template's mask).
    """

    fractions: np.ndarray
    labels: np.ndarray
    brain: np.ndarray


@dataclasses.dataclass(frozen=True)
class Anatomy:
    """A subject's anatomy.

    Attributes
    ----------
    deformation : Deformation
        Native <-> MNI mapping.
    gm_factor : numpy.ndarray
        (117,) grey-matter scaling per AAL label (index 0, no region, is 1), group effect
        included.
    shell_waves : numpy.ndarray
        (3, 5) plane waves modulating head-layer thickness: wave vector (rad/mm, 3),
        phase (rad), amplitude.
    bias : numpy.ndarray
        (9,) coefficients of the T1 log bias field (see :func:`smooth_gain`).
    """

    deformation: Deformation
    gm_factor: np.ndarray
    shell_waves: np.ndarray
    bias: np.ndarray

    def sample(self, world: np.ndarray) -> Sample:
        """Tissue fractions and labels at (3, N) scanner RAS mm points.

        Points that are air for certain (farther from the brain, after the affine alone,
        than the thickest head plus the largest warp displacement) are not interpolated.
        """
        model = mni_model()
        to_voxels = np.linalg.inv(model.affine)
        near = apply_affine(to_voxels @ self.deformation.native_to_mni_affine, world)
        reach = SHELLS[-1][1] * (1 + self.shell_waves[:, 4].sum()) + 1.0
        reach += float(np.linalg.norm(self.deformation.field, axis=0).max()) + 1.0
        head = nearest(model.stack[3], near) <= reach
        fractions = np.zeros((len(TISSUES), world.shape[1]), dtype=np.float32)
        labels = np.zeros(world.shape[1], dtype=model.labels.dtype)
        brain = np.zeros(world.shape[1], dtype=np.float32)
        mni = self.deformation.to_mni(world[:, head])
        voxels = apply_affine(to_voxels, mni)
        gm, wm, csf, distance = trilinear(model.stack, voxels)
        region = nearest(model.labels, voxels)
        labels[head] = region
        brain[head] = gm + wm + csf
        scaled = np.minimum(gm * self.gm_factor[region], gm + csf)
        inside = np.zeros((len(TISSUES), len(scaled)), dtype=np.float32)
        inside[0] = scaled
        inside[1] = wm
        inside[2] = csf + gm - scaled
        phase = self.shell_waves[:, :3].astype(np.float32) @ mni
        phase += self.shell_waves[:, 3:4].astype(np.float32)
        thickness = 1.0 + self.shell_waves[:, 4].astype(np.float32) @ np.cos(phase)
        depth = distance / thickness
        inner = 0.0
        for name, outer in SHELLS:
            inside[TISSUES.index(name)] += np.clip(depth - inner, 0, 1) - np.clip(
                depth - outer, 0, 1
            )
            inner = outer
        fractions[:, head] = inside
        return Sample(fractions, labels, brain)

    def sample_grid(self, grid: Grid) -> Sample:
        """:meth:`sample` at every voxel centre of ``grid``, in slabs along k.

        Returns
        -------
        Sample
            Arrays of shape (8, ni, nj, nk) and (ni, nj, nk).
        """
        ni, nj, nk = grid.shape
        out = Sample(
            np.empty((len(TISSUES), ni, nj, nk), dtype=np.float32),
            np.empty((ni, nj, nk), dtype=np.int16),
            np.empty((ni, nj, nk), dtype=np.float32),
        )
        per_slab = max(1, CHUNK // (ni * nj))
        for start in range(0, nk, per_slab):
            k = slice(start, min(start + per_slab, nk))
            part = self.sample(grid.world_coordinates(k))
            out.fractions[..., k] = part.fractions.reshape(len(TISSUES), ni, nj, -1)
            out.labels[..., k] = part.labels.reshape(ni, nj, -1)
            out.brain[..., k] = part.brain.reshape(ni, nj, -1)
        return out


def draw_anatomy(settings: SimulationSettings, participant_id: str, group: str) -> Anatomy:
    """A subject's anatomy from its ``anatomy`` and ``deformation`` streams.

    The random draws do not depend on ``group``; the patient effect is added afterwards,
    so with ``effect_size`` 0 a patient and a control with the same id are identical.
    """
    rng = subject_rng(settings.seed, participant_id, "anatomy")
    factor = np.ones(117, dtype=np.float32)
    factor[1:] = 1.0 + GM_REGION_SD * rng.standard_normal(116)
    if group == PATIENT_GROUP:
        factor[region_index(GM_TARGET_REGIONS)] -= GM_REGION_SD * settings.effect_size
    np.clip(factor, 0.3, 1.7, out=factor)
    directions = rng.standard_normal((3, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wavelength = rng.uniform(120.0, 250.0, size=(3, 1))
    waves = np.hstack(
        [
            directions * (2 * np.pi / wavelength),
            rng.uniform(0, 2 * np.pi, size=(3, 1)),
            rng.uniform(0.0, 0.12, size=(3, 1)),
        ]
    )
    bias = BIAS_SD * rng.standard_normal(9)
    deformation = random_deformation(subject_rng(settings.seed, participant_id, "deformation"))
    return Anatomy(deformation, factor, waves, bias)


def smooth_gain(coefficients: np.ndarray, grid: Grid) -> np.ndarray:
    """Multiplicative scanner-fixed gain (bias field / coil sensitivity) on a grid.

    ``exp(c . [x, y, z, x^2, y^2, z^2, xy, xz, yz])`` with world coordinates in units of
    100 mm, evaluated by broadcasting per-axis coordinates (the grid is axis-aligned).

    Parameters
    ----------
    coefficients : numpy.ndarray
        (9,) log-gain coefficients.
    grid : Grid
        Axis-aligned grid.

    Returns
    -------
    numpy.ndarray
        (ni, nj, nk) float32 gain.
    """
    x, y, z = (axis / np.float32(100.0) for axis in grid.axis_coordinates())
    c = coefficients.astype(np.float32)
    log_gain = (c[0] + c[3] * x + c[6] * y + c[7] * z) * x
    log_gain = log_gain + (c[1] + c[4] * y + c[8] * z) * y
    log_gain = log_gain + (c[2] + c[5] * z) * z
    return np.exp(log_gain)


def rician(signal: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Magnitude of ``signal`` plus complex Gaussian noise of SD ``sigma`` (float32)."""
    real = signal + sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    imag = sigma * rng.standard_normal(signal.shape, dtype=np.float32)
    return np.hypot(real, imag)


def to_uint16(image: np.ndarray, scale: float) -> np.ndarray:
    """Scale, round and clip to the 12-bit range stored in the DICOM pixel data."""
    return np.clip(np.rint(image * scale), 0, 4095).astype(np.uint16)


@dataclasses.dataclass(frozen=True)
class T1Image:
    """A simulated T1 and its truth on the same grid.

    Attributes
    ----------
    image : numpy.ndarray
        (ni, nj, nk) uint16 stored values (WM about :data:`T1_SCALE`).
    sample : Sample
        Tissue fractions, AAL labels and brain fraction at each voxel centre.
    """

    image: np.ndarray
    sample: Sample


def synthesize_t1(anatomy: Anatomy, grid: Grid, rng: np.random.Generator) -> T1Image:
    """MPRAGE-like T1: tissue contrast, bias field, Rician noise, sampled on ``grid``.

    Parameters
    ----------
    anatomy : Anatomy
    grid : Grid
        The T1 grid (canonical layout of the sagittal acquisition).
    rng : numpy.random.Generator
        The subject's ``t1_noise`` stream.
    """
    sample = anatomy.sample_grid(grid)
    clean = np.tensordot(T1_INTENSITY, sample.fractions, axes=1)
    clean *= smooth_gain(anatomy.bias, grid)
    noisy = rician(clean, T1_NOISE, rng)
    return T1Image(to_uint16(noisy, T1_SCALE), sample)
