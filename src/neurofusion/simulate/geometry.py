"""Scanner geometry: image grids, coordinate conventions, slice timing, sampling.

Conventions used throughout the simulator:

* World coordinates are scanner RAS+ millimetres (nibabel's convention); DICOM and ITK
  use LPS+, obtained by negating x and y (:data:`RAS_TO_LPS`).
* The scanner isocentre is the world origin; both fields of view are centred on it.
* A :class:`Grid`'s affine maps voxel indices (i, j, k) to world RAS mm, and is laid out as
  dcm2niix lays out the NIfTI it makes from our DICOM (columns along i, rows flipped along
  j, slices along k), so the truth affine and dcm2niix's affine can be compared directly.
"""

from __future__ import annotations

import dataclasses

import nibabel as nib
import numpy as np

#: Diagonal that converts RAS+ coordinates to LPS+ (and back).
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


@dataclasses.dataclass(frozen=True)
class Grid:
    """A 3D voxel grid in scanner space.

    Attributes
    ----------
    shape : tuple of int
        (ni, nj, nk) voxels.
    affine : numpy.ndarray
        (4, 4) voxel index -> world RAS mm.
    """

    shape: tuple[int, int, int]
    affine: np.ndarray

    @property
    def zooms(self) -> np.ndarray:
        """Voxel size along i, j, k in mm, shape (3,)."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    def world_coordinates(self, k_slices: slice | None = None) -> np.ndarray:
        """World RAS mm of voxel centres, shape (3, N) float32, in C order of (i, j, k).

        Parameters
        ----------
        k_slices : slice, optional
            Restrict to these k indices (for processing a large grid in slabs).
        """
        axes = np.meshgrid(
            np.arange(self.shape[0], dtype=np.float32),
            np.arange(self.shape[1], dtype=np.float32),
            np.arange(self.shape[2], dtype=np.float32)[k_slices or slice(None)],
            indexing="ij",
            sparse=True,
        )
        matrix = self.affine.astype(np.float32)
        return np.stack(
            [
                (matrix[row, 0] * axes[0] + matrix[row, 1] * axes[1])
                + (matrix[row, 2] * axes[2] + matrix[row, 3])
                for row in range(3)
            ]
        ).reshape(3, -1)

    def axis_coordinates(self) -> list[np.ndarray]:
        """World x, y, z of the voxel centres as broadcastable vectors (axis-aligned grids).

        Returns
        -------
        list of numpy.ndarray
            Three float32 arrays; the one for world axis a has the grid's shape along the
            voxel axis that runs along a and 1 elsewhere.
        """
        rotation = self.affine[:3, :3]
        voxel_axis = np.argmax(np.abs(rotation), axis=1)
        if sorted(voxel_axis) != [0, 1, 2] or np.count_nonzero(rotation) != 3:
            raise ValueError("axis_coordinates needs a grid aligned with the world axes")
        out = []
        for world_axis, axis in enumerate(voxel_axis):
            shape = [1, 1, 1]
            shape[axis] = self.shape[axis]
            steps = np.arange(self.shape[axis], dtype=np.float64)
            values = rotation[world_axis, axis] * steps + self.affine[world_axis, 3]
            out.append(values.astype(np.float32).reshape(shape))
        return out

    def oversampled(self, factor: int, margin: int) -> Grid:
        """A finer grid over the same field of view, ``margin`` fine voxels wider on each side.

        With margin 0, fine voxel (factor * i + a) for a in 0..factor-1 lies inside coarse
        voxel i, so :func:`block_mean` maps fine maps back onto this grid.
        """
        step = self.affine[:3, :3] / factor
        origin = self.affine[:3, 3] - step @ np.full(3, (factor - 1) / 2 + margin)
        affine = np.eye(4)
        affine[:3, :3] = step
        affine[:3, 3] = origin
        shape = tuple(int(n * factor + 2 * margin) for n in self.shape)
        return Grid(shape, affine)


def block_mean(fine: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor``-cubed blocks of a map on an :meth:`Grid.oversampled` grid.

    Parameters
    ----------
    fine : numpy.ndarray
        (..., ni * factor, nj * factor, nk * factor) map (spatial axes last), built with
        margin 0.
    factor : int
        As given to :meth:`Grid.oversampled`.

    Returns
    -------
    numpy.ndarray
        (..., ni, nj, nk) voxel means, float32.
    """
    lead = fine.shape[:-3]
    ni, nj, nk = (n // factor for n in fine.shape[-3:])
    blocks = fine.reshape(*lead, ni, factor, nj, factor, nk, factor)
    axes = tuple(len(lead) + offset for offset in (1, 3, 5))
    return blocks.mean(axis=axes, dtype=np.float64).astype(np.float32)


def sagittal_grid(voxel_mm, matrix, n_slices) -> Grid:
    """The T1 grid: sagittal slices (k runs right -> left), i posterior, j superior.

    Parameters
    ----------
    voxel_mm : sequence of 3 float
        (row spacing, column spacing, slice spacing) in mm.
    matrix : sequence of 2 int
        (rows, columns) of each slice; rows run along superior-inferior.
    n_slices : int
        Number of slices.
    """
    rows, cols = matrix
    axes = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]]).T
    return _centred_grid(axes, (voxel_mm[1], voxel_mm[0], voxel_mm[2]), (cols, rows, n_slices))


def axial_grid(voxel_mm, matrix, n_slices) -> Grid:
    """The BOLD grid: axial slices (k runs inferior -> superior), i left, j anterior.

    This is dcm2niix's usual LAS layout of a Siemens axial series.

    Parameters
    ----------
    voxel_mm : sequence of 3 float
        (row spacing, column spacing, slice spacing) in mm.
    matrix : sequence of 2 int
        (rows, columns) of each slice.
    n_slices : int
        Number of slices.
    """
    rows, cols = matrix
    axes = np.array([[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]).T
    return _centred_grid(axes, (voxel_mm[1], voxel_mm[0], voxel_mm[2]), (cols, rows, n_slices))


def canonical(grid: Grid) -> Grid:
    """The same voxels re-indexed so that i, j, k run along R, A, S (nibabel's canonical).

    dcm2niix stores a 3D acquisition (MRAcquisitionType ``3D``) this way, so the canonical
    version of the sagittal T1 acquisition grid is the T1 grid of the NIfTI it writes.
    """
    ornt = nib.orientations.io_orientation(grid.affine)
    affine = grid.affine @ nib.orientations.inv_ornt_aff(ornt, grid.shape)
    shape = [0, 0, 0]
    for source_axis, target_axis in enumerate(ornt[:, 0].astype(int)):
        shape[target_axis] = int(grid.shape[source_axis])
    return Grid(tuple(shape), affine)


def relayout(data: np.ndarray, source: Grid, target: Grid) -> np.ndarray:
    """Permute and flip the first three axes of ``data`` from ``source`` to ``target`` layout.

    Both grids must hold the same voxels (one is :func:`canonical` of the other); no
    interpolation happens.
    """
    transform = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(source.affine),
        nib.orientations.io_orientation(target.affine),
    )
    return nib.orientations.apply_orientation(data, transform)


def _centred_grid(axes: np.ndarray, zooms, shape) -> Grid:
    """Grid with unit direction columns ``axes``, voxel size ``zooms``, centred on the origin."""
    affine = np.eye(4)
    affine[:3, :3] = axes * np.asarray(zooms, dtype=float)
    affine[:3, 3] = -affine[:3, :3] @ ((np.asarray(shape) - 1) / 2.0)
    return Grid(tuple(int(n) for n in shape), affine)


#: Slice acquisition times are multiples of this (s). dcm2niix parses AcquisitionTime
#: (HHMMSS.FFFFFF) into a 32-bit float, whose resolution is 1/128 s from 06:55:36 to
#: 13:10:72 (65536 <= HHMMSS < 131072); times on this grid within those hours survive the
#: conversion exactly, others come back up to 8 ms (16 ms after 13:10) off.
SLICE_TIME_QUANTUM_S = 1.0 / 128.0


def slice_times(n_slices: int, tr_s: float, order: str) -> np.ndarray:
    """Acquisition time of each slice within the TR, in spatial slice order.

    Slices follow each other at the largest multiple of :data:`SLICE_TIME_QUANTUM_S` that
    fits ``n_slices`` times into the TR (so the acquisition ends slightly before the next
    TR, as on Siemens scanners). ``interleaved`` follows Siemens: odd slice counts acquire
    slices 0, 2, 4, ... then 1, 3, ...; even counts start with 1, 3, ....

    Parameters
    ----------
    n_slices : int
    tr_s : float
        Repetition time (s).
    order : str
        ``ascending`` or ``interleaved``.

    Returns
    -------
    numpy.ndarray
        (n_slices,) seconds from the start of the volume; index = spatial slice (inferior
        first), as BIDS ``SliceTiming``.
    """
    if order == "ascending":
        sequence = np.arange(n_slices)
    elif order == "interleaved":
        first = 0 if n_slices % 2 else 1
        sequence = np.r_[np.arange(first, n_slices, 2), np.arange(1 - first, n_slices, 2)]
    else:
        raise ValueError(f"unknown slice order {order!r}")
    interval = np.floor(tr_s / n_slices / SLICE_TIME_QUANTUM_S) * SLICE_TIME_QUANTUM_S
    times = np.empty(n_slices)
    times[sequence] = np.arange(n_slices) * interval
    return times


def trilinear(stack: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Trilinear interpolation of all channels of a 3D map at once, clamped at the edges.

    scipy.ndimage.map_coordinates interpolates one channel per call and recomputes the
    weights each time; the simulator samples four channels at ten million points per T1
    and at every one of 250 BOLD volumes, where sharing the corner indices and weights
    across channels is about 2x faster (measured). Points outside the grid take the value
    of the nearest edge voxel (scipy's mode ``nearest``).

    Parameters
    ----------
    stack : numpy.ndarray
        (C, ni, nj, nk) C-contiguous map, float32.
    coords : numpy.ndarray
        (3, N) fractional voxel indices.

    Returns
    -------
    numpy.ndarray
        (C, N) float32 values.
    """
    shape = stack.shape[1:]
    lower, frac = [], []
    for axis in range(3):
        position = np.clip(coords[axis], 0, shape[axis] - 1).astype(np.float32)
        index = np.minimum(position.astype(np.intp), shape[axis] - 2)
        lower.append(index)
        frac.append(position - index)
    strides = (shape[1] * shape[2], shape[2])
    base = lower[0] * strides[0] + lower[1] * strides[1] + lower[2]
    corners = [base + offset for offset in (0, strides[1], strides[0], sum(strides))]
    out = np.empty((stack.shape[0], coords.shape[1]), dtype=np.float32)
    for channel in range(stack.shape[0]):
        flat = stack[channel].reshape(-1)
        edges = [_lerp(flat.take(corner), flat.take(corner + 1), frac[2]) for corner in corners]
        front = _lerp(edges[0], edges[1], frac[1])
        back = _lerp(edges[2], edges[3], frac[1])
        out[channel] = _lerp(front, back, frac[0])
    return out


def _lerp(low: np.ndarray, high: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``low + weight * (high - low)``, computed in place in ``low`` and ``high``."""
    high -= low
    high *= weight
    low += high
    return low


def nearest(volume: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Nearest-neighbour sample of a 3D map at (3, N) voxel coordinates, clamped at edges."""
    shape = volume.shape
    flat = np.zeros(coords.shape[1], dtype=np.intp)
    for axis in range(3):
        index = np.clip(np.rint(coords[axis]), 0, shape[axis] - 1).astype(np.intp)
        flat *= shape[axis]
        flat += index
    return volume.reshape(-1).take(flat)


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) affine to (3, N) float32 points, in float32 (about 1e-5 mm)."""
    matrix = matrix.astype(np.float32)
    out = matrix[:3, :3] @ points
    out += matrix[:3, 3:]
    return out
