"""Subject-level features that need no fitting: resampling to the CNN grid, connectivity
vectors, and the handcrafted regional grey-matter and texture features.

Nothing here looks at more than one subject at a time, so these features can be computed
once for the whole cohort without leaking information between cross-validation folds.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import ndimage as ndi

from neurofusion import atlas
from neurofusion.templates import mni_brain_mask

#: FWHM (in voxels of the output) per unit of the resolution gap, for anti-aliasing.
_FWHM_TO_SIGMA = 1.0 / math.sqrt(8.0 * math.log(2.0))
#: Grey levels of the texture quantisation (PAPER.md section 4: GLCM features).
GLCM_LEVELS = 32
#: Haralick properties computed from each region's GLCM (skimage.feature.graycoprops).
GLCM_PROPS = ("contrast", "homogeneity", "energy", "correlation")
#: In-plane GLCM directions (radians) at distance 1 voxel, averaged.
GLCM_ANGLES = (0.0, np.pi / 4, np.pi / 2, 3 * np.pi / 4)


def target_grid(
    affine: np.ndarray, shape: tuple[int, ...], resolution_mm: float
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The grid covering the field of view of (``affine``, ``shape``) at ``resolution_mm``.

    Parameters
    ----------
    affine : numpy.ndarray
        (4, 4) voxel -> MNI mm of the source grid (axis-aligned, isotropic).
    shape : tuple of int
        Source grid size (X, Y, Z).
    resolution_mm : float
        Voxel size of the output grid (mm).

    Returns
    -------
    affine : numpy.ndarray
        (4, 4) of the output grid; voxel (0, 0, 0) covers the source's first corner.
    shape : tuple of int
        ``ceil(shape * source voxel size / resolution_mm)``.
    """
    source_mm = float(np.linalg.norm(affine[:3, 0]))
    scale = resolution_mm / source_mm
    out = affine.copy()
    out[:3, :3] = affine[:3, :3] * scale
    # Voxel centres: the first output centre sits half an output voxel inside the corner.
    out[:3, 3] = affine[:3, :3] @ np.full(3, (scale - 1.0) / 2.0) + affine[:3, 3]
    out_shape = tuple(math.ceil(s / scale) for s in shape[:3])
    return out, out_shape


def brain_box_grid(
    affine: np.ndarray, shape: tuple[int, ...], resolution_mm: float
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The part of :func:`target_grid` that covers the template's brain, one voxel to spare.

    The 3D CNN reads this grid. Its voxels are a block of :func:`target_grid`'s (same
    centres), cut to the bounding box of the MNI152 brain mask (146 x 180 x 156 mm) plus
    one output voxel on every side, and to the source field of view. At 4 mm that is
    39 x 47 x 40 voxels instead of 50 x 59 x 48 for nilearn's 2 mm template grid: the
    background cut away is zero in every z-scored T1 and map, and a training step of the
    study's CNN on a batch of 16 took 0.21 s instead of 0.40 s (2 CPU threads).

    The parameters are :func:`target_grid`'s; it returns the cut grid's (4, 4) affine and
    its size (X, Y, Z).
    """
    full_affine, full_shape = target_grid(affine, shape, resolution_mm)
    mask = mni_brain_mask(2)
    inside = np.argwhere(np.asarray(mask.dataobj) > 0)
    half = 0.5 * np.ones(3)
    ends = np.array([inside.min(axis=0) - half, inside.max(axis=0) + half])
    corners = np.array(list(itertools.product(*ends.T)))  # (8, 3) voxel corners of the box
    mm = mask.affine[:3, :3] @ corners.T + mask.affine[:3, 3:4]
    voxels = np.linalg.inv(full_affine)[:3] @ np.vstack([mm, np.ones(len(corners))])
    low = np.maximum(np.floor(voxels.min(axis=1) + 0.5).astype(int) - 1, 0)
    high = np.minimum(np.ceil(voxels.max(axis=1) - 0.5).astype(int) + 1, np.array(full_shape) - 1)
    out = full_affine.copy()
    out[:3, 3] = full_affine[:3, :3] @ low + full_affine[:3, 3]
    return out, tuple(int(n) for n in high - low + 1)


def resample(
    data: np.ndarray,
    affine: np.ndarray,
    target_affine: np.ndarray,
    target_shape: tuple[int, int, int],
    order: int = 1,
) -> np.ndarray:
    """Resample a 3D image onto an axis-aligned grid, with anti-aliasing when coarsening.

    A Gaussian of FWHM ``sqrt(r_out**2 - r_in**2)`` (mm) is applied first when the output
    voxels are larger, then a single interpolation of ``order`` (1: trilinear, 0: nearest).

    Parameters
    ----------
    data : numpy.ndarray
        (X, Y, Z) image; non-finite values are treated as 0.
    affine, target_affine : numpy.ndarray
        (4, 4) voxel -> mm of the source and output grids.
    target_shape : tuple of int
    order : int

    Returns
    -------
    numpy.ndarray
        ``target_shape`` float32 (0 outside the source field of view).
    """
    data = np.nan_to_num(np.asarray(data, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    r_in = float(np.linalg.norm(affine[:3, 0]))
    r_out = float(np.linalg.norm(target_affine[:3, 0]))
    if order > 0 and r_out > r_in:
        sigma = math.sqrt(r_out**2 - r_in**2) * _FWHM_TO_SIGMA / r_in
        data = ndi.gaussian_filter(data, sigma, mode="constant")
    mapping = np.linalg.inv(affine) @ target_affine
    return ndi.affine_transform(
        data, mapping, output_shape=target_shape, order=order, mode="constant", cval=0.0
    ).astype(np.float32)


def aal_on_grid(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """AAL-116 labels (int16, 0 = none) at the voxel centres of an MNI grid (nearest)."""
    aal = atlas.aal_image()
    mapping = np.linalg.inv(aal.affine) @ affine
    return ndi.affine_transform(
        np.asarray(aal.dataobj), mapping, output_shape=shape, order=0, mode="constant"
    ).astype(np.int16)


def zscore_within(data: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``data`` z-scored with its own mean and SD inside ``mask`` (float32, 0 outside).

    Applied to one subject at a time (a T1 in its brain mask, a fALFF map), so it fits
    nothing across subjects.
    """
    inside = mask > 0.5
    values = data[inside]
    if values.size == 0:
        return np.zeros_like(data, dtype=np.float32)
    scale = float(values.std()) or 1.0
    out = np.where(inside, (data - float(values.mean())) / scale, 0.0)
    return out.astype(np.float32)


def upper_triangle(matrices: np.ndarray) -> np.ndarray:
    """(n, N, N) -> (n, N (N - 1) / 2) strictly-upper-triangle edges, row-major order."""
    rows, cols = np.triu_indices(matrices.shape[-1], k=1)
    return matrices[:, rows, cols]


def quantise(t1: np.ndarray, mask: np.ndarray, levels: int = GLCM_LEVELS) -> np.ndarray:
    """Grey levels 1..``levels`` inside ``mask`` (0 outside), between the subject's own
    1st and 99th brain percentiles (no information from other subjects)."""
    inside = mask > 0.5
    if not inside.any():
        return np.zeros(t1.shape, dtype=np.uint8)
    low, high = np.percentile(t1[inside], [1.0, 99.0])
    span = max(float(high - low), 1e-6)
    q = np.floor((t1 - low) / span * levels).clip(0, levels - 1).astype(np.uint8) + 1
    return np.where(inside, q, 0).astype(np.uint8)


def glcm_features(quantised: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Haralick features of one region's grey-level co-occurrence matrix.

    Uses scikit-image's :func:`~skimage.feature.graycomatrix`, which is two-dimensional:
    the region's axial slices are laid side by side with one empty (level 0) column
    between them, so co-occurrences at distance 1 never cross slices, and pairs touching
    level 0 (outside the region) are dropped before :func:`~skimage.feature.graycoprops`.
    The result is the slice-aggregated ("2.5D") GLCM, symmetric, over :data:`GLCM_ANGLES`.

    Parameters
    ----------
    quantised : numpy.ndarray
        (X, Y, Z) uint8 grey levels 1..:data:`GLCM_LEVELS` (0 = background).
    region : numpy.ndarray
        (X, Y, Z) bool mask of the region.

    Returns
    -------
    numpy.ndarray
        (len(GLCM_PROPS),) float, averaged over angles; zeros when the region has no pair
        of neighbouring voxels in some direction.
    """
    from skimage.feature import graycomatrix, graycoprops

    if not region.any():
        return np.zeros(len(GLCM_PROPS))
    box = tuple(slice(idx.min(), idx.max() + 1) for idx in np.nonzero(region))
    block = np.where(region[box], quantised[box], 0)  # (x, y, z)
    x, y, z = block.shape
    padded = np.zeros((x, y + 1, z), dtype=np.uint8)
    padded[:, :y] = block
    strip = padded.transpose(0, 2, 1).reshape(x, z * (y + 1))
    glcm = graycomatrix(
        strip, [1], list(GLCM_ANGLES), levels=GLCM_LEVELS + 1, symmetric=True, normed=False
    )[1:, 1:].astype(np.float64)
    totals = glcm.sum(axis=(0, 1), keepdims=True)
    if np.any(totals == 0):
        return np.zeros(len(GLCM_PROPS))
    glcm /= totals
    return np.array([graycoprops(glcm, prop).mean() for prop in GLCM_PROPS])


def handcrafted_features(
    t1: np.ndarray, gm: np.ndarray, mask: np.ndarray, labels: np.ndarray, voxel_ml: float
) -> np.ndarray:
    """Regional grey-matter volume and GLCM texture of every AAL region (PAPER.md sec. 4).

    Parameters
    ----------
    t1, gm, mask : numpy.ndarray
        (X, Y, Z) MNI T1, grey-matter probability and brain mask of one subject.
    labels : numpy.ndarray
        (X, Y, Z) AAL-116 labels on the same grid (:func:`aal_on_grid`).
    voxel_ml : float
        Volume of one voxel (mL).

    Returns
    -------
    numpy.ndarray
        (116 * (1 + len(GLCM_PROPS)),) float: per region, in AAL order, the grey-matter
        volume (mL) then the texture properties of :data:`GLCM_PROPS`.
    """
    values = [value for value, _ in atlas.aal_labels()]
    volume = ndi.sum_labels(gm, labels, values) * voxel_ml
    quantised = quantise(t1, mask)
    boxes = ndi.find_objects(labels, max_label=max(values))
    rows = []
    for value, vol in zip(values, volume, strict=True):
        box = boxes[value - 1]  # crop first: scanning the whole grid per region is slow
        region = np.zeros(0, bool) if box is None else labels[box] == value
        texture = glcm_features(quantised[box] if box else quantised, region)
        rows.append(np.concatenate([[vol], texture]))
    return np.concatenate(rows)


def handcrafted_names() -> list[str]:
    """Column names of :func:`handcrafted_features`: ``<region>_gm_ml``, ``<region>_<prop>``."""
    return [
        f"{name}_{kind}"
        for _, name in atlas.aal_labels()
        for kind in ("gm_ml", *(f"glcm_{p}" for p in GLCM_PROPS))
    ]
