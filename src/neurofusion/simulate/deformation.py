"""A subject's native <-> MNI mapping: a random affine plus a smooth nonlinear warp.

The mapping from a native (scanner RAS mm) point x to its MNI point y is

    q = A x            (affine: inverse of the head's placement and size in the scanner)
    y = q + u(q)       (u: displacement field on :data:`WARP_GRID`, trilinear between nodes)

exactly what ``ants.apply_transforms(..., transformlist=[affine, warp],
whichtoinvert=[False, False])`` computes (antspy maps points through the list front to
back). The inverse displacement ``v`` (``q = y + v(y)``) is the fixed point of
``v(y) = -u(y + v(y))`` on the same nodes.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from neurofusion.simulate.geometry import RAS_TO_LPS, Grid, apply_affine, trilinear

#: Brain centre in MNI mm (centre of the template brain's bounding box, cerebrum).
MNI_BRAIN_CENTRE = np.array([0.0, -17.0, 10.0])
#: Node spacing of the displacement fields (mm).
WARP_SPACING_MM = 4.0
#: Grid of the displacement fields, axis-aligned RAS, covering every field of view in MNI mm.
WARP_GRID = Grid(
    (71, 80, 81),
    np.array(
        [
            [WARP_SPACING_MM, 0, 0, -140.0],
            [0, WARP_SPACING_MM, 0, -176.0],
            [0, 0, WARP_SPACING_MM, -150.0],
            [0, 0, 0, 1],
        ]
    ),
)
#: Standard deviation of each displacement component inside the head (mm).
WARP_STD_MM = 1.5
#: Spatial smoothness of the displacement (Gaussian sigma, mm).
WARP_SMOOTHNESS_MM = 20.0
#: The warp fades to zero between these distances (mm) from the brain centre.
WARP_TAPER_MM = (100.0, 135.0)
#: Head-size, rotation and translation ranges of the random affine.
HEAD_SCALE_RANGE = 0.08
ROTATION_DEG = 10.0
TRANSLATION_MM = 10.0


@dataclasses.dataclass(frozen=True)
class Deformation:
    """Native <-> MNI mapping of one subject.

    Attributes
    ----------
    native_to_mni_affine : numpy.ndarray
        (4, 4) RAS mm -> RAS mm, the affine part ``A``.
    field : numpy.ndarray
        (3, 71, 80, 81) float32 RAS displacement ``u`` in mm on :data:`WARP_GRID`.
    inverse_field : numpy.ndarray
        Same shape: ``v`` with ``q = y + v(y)``.
    """

    native_to_mni_affine: np.ndarray
    field: np.ndarray
    inverse_field: np.ndarray

    def to_mni(self, world: np.ndarray) -> np.ndarray:
        """MNI mm of native points: (3, N) scanner RAS mm -> (3, N) float32."""
        q = apply_affine(self.native_to_mni_affine, world)
        return q + displacement(self.field, q)

    def write_ants(self, affine_path: str | Path, warp_path: str | Path, inverse_path) -> None:
        """Write the ITK affine (``.mat``) and both displacement fields (NIfTI, ANTs style).

        Parameters
        ----------
        affine_path : path
            ITK ``AffineTransform_double_3_3`` mapping native to affine-MNI points (LPS).
        warp_path, inverse_path : path
            ``u`` and ``v`` as ITK displacement-field images (LPS vectors, mm), ``.nii.gz``.
        """
        import ants

        matrix = RAS_TO_LPS @ self.native_to_mni_affine[:3, :3] @ RAS_TO_LPS
        translation = RAS_TO_LPS @ self.native_to_mni_affine[:3, 3]
        transform = ants.create_ants_transform(
            transform_type="AffineTransform",
            precision="double",
            dimension=3,
            matrix=matrix,
            translation=translation,
            center=np.zeros(3),
        )
        ants.write_transform(transform, str(affine_path))
        origin = RAS_TO_LPS @ WARP_GRID.affine[:3, 3]
        direction = RAS_TO_LPS @ (WARP_GRID.affine[:3, :3] / WARP_SPACING_MM)
        for data, path in ((self.field, warp_path), (self.inverse_field, inverse_path)):
            lps = np.moveaxis(np.einsum("ij,j...->i...", RAS_TO_LPS, data), 0, -1)
            image = ants.from_numpy(
                np.ascontiguousarray(lps, dtype=np.float32),
                origin=origin.tolist(),
                spacing=[WARP_SPACING_MM] * 3,
                direction=direction,
                has_components=True,
            )
            ants.image_write(image, str(path))


def displacement(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Trilinear displacement at (3, N) MNI-mm points; (3, N) float32 mm."""
    voxels = apply_affine(np.linalg.inv(WARP_GRID.affine), points)
    return trilinear(field, voxels)


def random_affine(rng: np.random.Generator) -> np.ndarray:
    """Native -> MNI affine of a head placed at random in the scanner.

    The head (MNI brain centre) sits at the isocentre, shifted by up to
    :data:`TRANSLATION_MM` per axis, rotated by up to :data:`ROTATION_DEG` about each axis
    and scaled by 1 +- :data:`HEAD_SCALE_RANGE` (plus 2 % per-axis anisotropy).

    Returns
    -------
    numpy.ndarray
        (4, 4) RAS mm -> RAS mm, the inverse of ``mni -> scanner``.
    """
    scale = rng.uniform(1 - HEAD_SCALE_RANGE, 1 + HEAD_SCALE_RANGE)
    scales = scale * rng.uniform(0.98, 1.02, size=3)
    angles = np.deg2rad(rng.uniform(-ROTATION_DEG, ROTATION_DEG, size=3))
    shift = rng.uniform(-TRANSLATION_MM, TRANSLATION_MM, size=3)
    mni_to_scanner = np.eye(4)
    mni_to_scanner[:3, :3] = rotation_matrix(angles) @ np.diag(scales)
    mni_to_scanner[:3, 3] = shift - mni_to_scanner[:3, :3] @ MNI_BRAIN_CENTRE
    return np.linalg.inv(mni_to_scanner)


def rotation_matrix(angles_rad: np.ndarray) -> np.ndarray:
    """``Rx(a) @ Ry(b) @ Rz(c)`` for angles (a, b, c) in radians (SPM's order); (3, 3)."""
    a, b, c = angles_rad
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


def random_field(rng: np.random.Generator) -> np.ndarray:
    """Smooth random displacement on :data:`WARP_GRID` (Gaussian random field).

    White noise smoothed with a Gaussian of :data:`WARP_SMOOTHNESS_MM`, scaled to
    :data:`WARP_STD_MM` per component and faded to zero outside the head
    (:data:`WARP_TAPER_MM`), so that the field is zero at the grid's edges where ITK stops
    interpolating it.

    Returns
    -------
    numpy.ndarray
        (3, 71, 80, 81) float32 RAS displacement (mm).
    """
    sigma = WARP_SMOOTHNESS_MM / WARP_SPACING_MM
    noise = rng.standard_normal((3, *WARP_GRID.shape))
    field = np.stack([ndi.gaussian_filter(component, sigma) for component in noise])
    field *= WARP_STD_MM / field.std(axis=(1, 2, 3), keepdims=True)
    radius = np.linalg.norm(
        WARP_GRID.world_coordinates().reshape(3, *WARP_GRID.shape)
        - MNI_BRAIN_CENTRE[:, None, None, None],
        axis=0,
    )
    inner, outer = WARP_TAPER_MM
    ramp = np.clip((outer - radius) / (outer - inner), 0.0, 1.0)
    taper = np.sin(0.5 * np.pi * ramp) ** 2
    return (field * taper).astype(np.float32)


def invert_field(field: np.ndarray, tolerance_mm: float = 1e-5, max_iterations: int = 50):
    """Inverse displacement by fixed-point iteration ``v <- -u(y + v)`` on the field's nodes.

    Written here rather than with ``ants.invert_displacement_field`` so that the inverse is
    the exact fixed point of the same trilinear forward field the simulator used; the
    residual |y + v(y) + u(y + v(y)) - y| at the nodes is below 1e-4 mm for our fields.

    Parameters
    ----------
    field : numpy.ndarray
        (3, ni, nj, nk) forward displacement on :data:`WARP_GRID` (mm).
    tolerance_mm : float
        Stop when no node's inverse moves more than this between iterations.
    max_iterations : int
        Upper bound (the map contracts fast for |grad u| << 1: about ten iterations).

    Returns
    -------
    numpy.ndarray
        Inverse displacement, same shape, float32.
    """
    nodes = WARP_GRID.world_coordinates()
    inverse = np.zeros_like(nodes)
    for _ in range(max_iterations):
        previous, inverse = inverse, -displacement(field, nodes + inverse)
        if np.abs(inverse - previous).max() < tolerance_mm:
            break
    return inverse.reshape(field.shape)


def random_deformation(rng: np.random.Generator) -> Deformation:
    """Draw a subject's affine and warp from its ``deformation`` stream."""
    affine = random_affine(rng)
    field = random_field(rng)
    return Deformation(affine, field, invert_field(field))
