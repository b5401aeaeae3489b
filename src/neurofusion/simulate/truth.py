"""Write a subject's ground truth, with every file's units and conventions documented."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from neurofusion.fileio import write_json
from neurofusion.simulate.anatomy import TISSUES, Sample
from neurofusion.simulate.geometry import Grid
from neurofusion.simulate.motion import PARAMETERS
from neurofusion.templates import TEMPLATE_SPACE

#: Affine part of native T1 -> MNI (ITK, LPS).
AFFINE_FILE = "T1w_to-MNI_affine.mat"
#: Displacement applied after the affine (native -> MNI direction).
WARP_FILE = "T1w_to-MNI_warp.nii.gz"
#: Its inverse (MNI -> affine-native direction).
INVERSE_WARP_FILE = "MNI_to-T1w_warp.nii.gz"

README: dict[str, Any] = {
    "description": (
        "Ground truth of one simulated subject (neurofusion.simulate). The pipeline never "
        "reads this folder; accuracy tests compare its outputs with it."
    ),
    "spaces": {
        "scanner": (
            "World coordinates are scanner RAS+ mm (NIfTI convention); the isocentre is the "
            "origin. The T1 and the BOLD share this space: the head is at the same position "
            "during the T1 and during the reference BOLD volume (the first after the dummy "
            "scans), so the EPI -> T1 transform is the identity in world coordinates."
        ),
        "T1w": (
            "Grid of the T1 NIfTI that dcm2niix makes from the DICOM (canonical RAS layout of "
            "the sagittal acquisition); files T1w_*."
        ),
        "bold": "Grid of the BOLD NIfTI that dcm2niix makes (LAS, axial slices); files bold_*.",
        "MNI": f"{TEMPLATE_SPACE} (nilearn's ICBM152 2009a template, 1 mm, and AAL-116).",
    },
    "files": {
        "T1w_label-<GM|WM|CSF>_probseg.nii.gz": (
            "float32 volume fraction of the tissue at each T1 voxel centre (partial volume of "
            "the sharpened 1 mm MNI priors). CSF includes the extra-cerebral CSF rim."
        ),
        "T1w_atlas-AAL116_dseg.nii.gz": (
            "int16 AAL-116 label (values 1-116 in AAL.txt order, 0 = none) at each T1 voxel "
            "centre: the MNI atlas carried by the transforms below, nearest neighbour."
        ),
        "T1w_desc-brain_mask.nii.gz": "uint8 1 where the template brain mask fraction >= 0.5.",
        "bold_label-<GM|WM|CSF>_probseg.nii.gz": (
            "float32 tissue fraction averaged over each EPI voxel (2x2x2 samples), head at "
            "the reference pose."
        ),
        "bold_atlas-AAL116_dseg.nii.gz": "int16 AAL-116 label at each EPI voxel centre.",
        "bold_desc-brain_mask.nii.gz": "uint8 brain mask fraction >= 0.5 on the EPI grid.",
        AFFINE_FILE: (
            "ITK AffineTransform (LPS, written by antspyx) mapping native T1 points to "
            "affine-MNI points q."
        ),
        WARP_FILE: (
            "ITK/ANTs displacement field u (LPS vectors, mm) on a 4 mm MNI grid: MNI point "
            "y = q + u(q). It is the exact warp used by the simulator (trilinear between "
            "nodes, as ITK interpolates it)."
        ),
        INVERSE_WARP_FILE: (
            "Inverse displacement v (q = y + v(y)), fixed point on the nodes; accurate to "
            "about 0.01 mm on average, 0.1 mm at worst, between nodes."
        ),
        "motion.tsv": (
            "One row per acquired BOLD volume, dummy scans included (column dummy = 1); "
            "trans_x/y/z in mm, rot_x/y/z in degrees. Volume n's head pose is "
            "M_n = T(trans) @ Rx(rot_x) @ Ry(rot_y) @ Rz(rot_z) in scanner RAS+ mm, rotations "
            "about the scanner isocentre (world origin). M_n maps a point of the head at the "
            "reference pose to its position during volume n (reference -> volume); realigning "
            "volume n applies inv(M_n). The reference is the first volume after the dummy "
            "scans (its row is all zeros), which is also the T1 pose. Motion is constant "
            "within a volume."
        ),
        "timeseries.tsv": (
            "True BOLD time course of each AAL region (116 columns, AAL names), unit variance, "
            "one row per retained volume (dummy scans excluded), sampled at each volume's "
            "reference time: volume start + ReferenceTime (group.json), the middle of the "
            "slice acquisition window, as slice-timing correction with reference 0.5 "
            "(fMRIPrep's default) targets."
        ),
        "connectivity.tsv": (
            "Pearson correlation (not Fisher-z) of the columns of timeseries.tsv, 116 x 116, "
            "header = AAL names, row i = column i, diagonal 1. Fisher z = arctanh(r)."
        ),
        "connectivity_model.tsv": (
            "The population correlation the time courses were drawn from (same layout)."
        ),
        "group.json": "Group, effect sizes, seed, acquisition timing and subject parameters.",
    },
    "ants_usage": {
        "note": (
            "antspy maps each output (fixed) point through transformlist front to back. Pass "
            "whichtoinvert explicitly: without it antspy inverts a leading .mat."
        ),
        "MNI image -> native T1 (e.g. the AAL atlas)": (
            f"ants.apply_transforms(fixed=T1w, moving=mni_image, transformlist=[{AFFINE_FILE!r}, "
            f"{WARP_FILE!r}], whichtoinvert=[False, False], interpolator='nearestNeighbor')"
        ),
        "native T1 image -> MNI": (
            f"ants.apply_transforms(fixed=mni_image, moving=T1w, transformlist=["
            f"{INVERSE_WARP_FILE!r}, {AFFINE_FILE!r}], whichtoinvert=[False, True])"
        ),
        "native EPI image -> MNI": (
            "the same as for the T1 (the EPI shares scanner space with the T1), after motion "
            "correction to the reference volume"
        ),
    },
}


def write_map(path: Path, data: np.ndarray, grid: Grid) -> None:
    """Save a 3D map on ``grid`` as NIfTI (sform and qform set, code 1 = scanner)."""
    image = nib.Nifti1Image(data, grid.affine)
    image.set_qform(grid.affine, code=1)
    image.set_sform(grid.affine, code=1)
    nib.save(image, str(path))


def write_anatomy_truth(folder: Path, prefix: str, sample: Sample, grid: Grid) -> None:
    """Tissue fractions, AAL labels and brain mask of ``sample`` on ``grid``."""
    for name in ("GM", "WM", "CSF"):
        fraction = np.ascontiguousarray(sample.fractions[TISSUES.index(name)])
        write_map(folder / f"{prefix}_label-{name}_probseg.nii.gz", fraction, grid)
    write_map(folder / f"{prefix}_atlas-AAL116_dseg.nii.gz", sample.labels.astype(np.int16), grid)
    mask = (sample.brain >= 0.5).astype(np.uint8)
    write_map(folder / f"{prefix}_desc-brain_mask.nii.gz", mask, grid)


def write_table(path: Path, table: pd.DataFrame) -> None:
    """Tab-separated, no index, fixed float format (reruns give identical bytes)."""
    table.to_csv(path, sep="\t", index=False, float_format="%.6f", lineterminator="\n")


def write_function_truth(
    folder: Path,
    names: tuple[str, ...],
    timeseries: np.ndarray,
    model: np.ndarray,
    motion: np.ndarray,
    dummy_scans: int,
) -> None:
    """Time courses, connectivity (sample and model) and motion tables.

    Parameters
    ----------
    folder : Path
    names : tuple of str
        116 AAL region names.
    timeseries : numpy.ndarray
        (n_volumes, 116) true region signals at the retained volumes' reference times.
    model : numpy.ndarray
        (116, 116) population correlation.
    motion : numpy.ndarray
        (dummy_scans + n_volumes, 6) motion parameters.
    dummy_scans : int
    """
    write_table(folder / "timeseries.tsv", pd.DataFrame(timeseries, columns=list(names)))
    correlation = np.corrcoef(timeseries, rowvar=False)
    write_table(folder / "connectivity.tsv", pd.DataFrame(correlation, columns=list(names)))
    write_table(folder / "connectivity_model.tsv", pd.DataFrame(model, columns=list(names)))
    table = pd.DataFrame(motion, columns=list(PARAMETERS))
    table.insert(0, "dummy", (np.arange(len(motion)) < dummy_scans).astype(int))
    write_table(folder / "motion.tsv", table)


def write_readme(folder: Path, group_info: dict[str, Any]) -> None:
    """README.json (conventions) and group.json (this subject's parameters)."""
    write_json(folder / "README.json", README)
    write_json(folder / "group.json", group_info)
