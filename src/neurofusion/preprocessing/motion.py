"""Head-motion correction (rigid realignment with ANTs) and motion summaries.

Parameter convention (SPM's, and the simulator's): the pose of volume ``n`` is the rigid
map ``M_n = T(t) @ Rx(a) @ Ry(b) @ Rz(c)`` in world RAS+ millimetres, rotating about the
world origin (the scanner isocentre for DICOM-derived images). It takes a point of the
head as it was in the reference volume to where it is in volume ``n``. The confounds use
fMRIPrep's names and units: ``trans_x..z`` in mm, ``rot_x..z`` in radians.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import ants
import nibabel as nib
import numpy as np

#: LPS <-> RAS flip (ITK works in LPS, NIfTI and neurofusion in RAS).
LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: Radius (mm) of the sphere of Jenkinson's RMS displacement.
JENKINSON_RADIUS_MM = 80.0


def ants_transform_to_ras(transform) -> np.ndarray:
    """The 4 x 4 RAS+ world matrix of a linear ANTs (ITK) transform.

    ITK's point transform maps fixed-image physical points (LPS) to moving-image points;
    the matrix is recovered from the images of the origin and the unit vectors, so any
    linear transform type (Euler, rigid, affine) works.

    Parameters
    ----------
    transform : ants.ANTsTransform
        A linear transform read with ``ants.read_transform``.

    Returns
    -------
    numpy.ndarray
        Shape (4, 4): ``x_moving = M @ x_fixed`` in RAS+ mm.
    """
    points = np.vstack([np.zeros(3), np.eye(3)])
    mapped = np.array([transform.apply_to_point(tuple(p)) for p in points])
    lps = np.eye(4)
    lps[:3, 3] = mapped[0]
    lps[:3, :3] = (mapped[1:] - mapped[0]).T
    return LPS @ lps @ LPS


def matrix_to_parameters(matrix: np.ndarray) -> np.ndarray:
    """Decompose a rigid RAS matrix into (trans_x, trans_y, trans_z, rot_x, rot_y, rot_z).

    Parameters
    ----------
    matrix : numpy.ndarray
        Shape (4, 4), ``T(t) @ Rx(a) @ Ry(b) @ Rz(c)``.

    Returns
    -------
    numpy.ndarray
        Shape (6,): translations (mm) and rotations (radians).
    """
    r = matrix[:3, :3]
    b = np.arcsin(np.clip(r[0, 2], -1.0, 1.0))
    a = np.arctan2(-r[1, 2], r[2, 2])
    c = np.arctan2(-r[0, 1], r[0, 0])
    return np.r_[matrix[:3, 3], a, b, c]


def realign(
    bold: nib.Nifti1Image, work_dir: str | Path, reference_index: int = 0, seed: int = 0
) -> tuple[np.ndarray, list[Path], nib.Nifti1Image]:
    """Rigidly register every volume to a reference volume with ANTs (``BOLDRigid``).

    Parameters
    ----------
    bold : nibabel.Nifti1Image
        4D BOLD run, shape (x, y, z, t).
    work_dir : str or Path
        Folder that receives one ITK transform file per volume.
    reference_index : int
        The volume the others are aligned to (its pose is the identity).
    seed : int
        ANTs random seed (metric sampling), for reproducible results.

    Returns
    -------
    matrices : numpy.ndarray
        Shape (t, 4, 4): RAS pose ``M_n`` of each volume (identity for the reference).
    transforms : list of Path
        Per volume, the ITK transform mapping reference points to that volume's points,
        usable in ``ants.apply_transforms`` (fixed = reference space).
    reference : nibabel.Nifti1Image
        The reference volume (3D, float32).
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    data = np.asarray(bold.dataobj, dtype=np.float32)
    reference = nib.Nifti1Image(data[..., reference_index], bold.affine, bold.header)
    reference.header.set_data_dtype(np.float32)
    fixed = ants.from_nibabel_nifti(reference)
    matrices, transforms = [], []
    for index in range(data.shape[-1]):
        moving = ants.from_nibabel_nifti(nib.Nifti1Image(data[..., index], bold.affine))
        with tempfile.TemporaryDirectory(dir=work_dir) as scratch:
            result = ants.registration(
                fixed,
                moving,
                type_of_transform="BOLDRigid",
                outprefix=f"{scratch}/",
                random_seed=seed,
            )
            target = work_dir / f"vol-{index:04d}_xfm.mat"
            Path(result["fwdtransforms"][0]).replace(target)
        transforms.append(target)
        matrices.append(ants_transform_to_ras(ants.read_transform(str(target))))
    return np.array(matrices), transforms, reference


def motion_parameters(matrices: np.ndarray) -> np.ndarray:
    """Shape (t, 6) parameters of a run's (t, 4, 4) poses; see :func:`matrix_to_parameters`."""
    return np.array([matrix_to_parameters(m) for m in matrices])


def framewise_displacement_jenkinson(matrices: np.ndarray) -> np.ndarray:
    """Jenkinson's relative RMS displacement between consecutive volumes (mm).

    The root-mean-square displacement of the points of a sphere of radius
    :data:`JENKINSON_RADIUS_MM` centred on the world origin (Jenkinson, 1999, eq. 7).

    Parameters
    ----------
    matrices : numpy.ndarray
        Shape (t, 4, 4) poses.

    Returns
    -------
    numpy.ndarray
        Shape (t,); the first entry is 0.
    """
    out = np.zeros(len(matrices))
    for n in range(1, len(matrices)):
        delta = matrices[n] @ np.linalg.inv(matrices[n - 1]) - np.eye(4)
        a, t = delta[:3, :3], delta[:3, 3]
        out[n] = np.sqrt(JENKINSON_RADIUS_MM**2 / 5 * np.trace(a.T @ a) + t @ t)
    return out
