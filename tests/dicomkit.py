"""Write modified copies of real DICOM series, for tests of bad or identifying input."""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid


def read_series(folder: Path) -> list[pydicom.Dataset]:
    """Every DICOM image in ``folder`` (non-DICOM files skipped), sorted by InstanceNumber."""
    out = []
    for path in sorted(folder.iterdir()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True)
        if "PixelData" in ds:
            out.append(ds)
    return sorted(out, key=lambda ds: int(ds.InstanceNumber))


def first_volume(datasets: Iterable[pydicom.Dataset]) -> list[pydicom.Dataset]:
    """The earliest image at each slice position: one 3D volume of a classic series."""
    chosen: dict[tuple, pydicom.Dataset] = {}
    for ds in datasets:
        key = tuple(round(float(v), 2) for v in ds.ImagePositionPatient)
        chosen.setdefault(key, ds)
    return list(chosen.values())


def write_series(
    datasets: Iterable[pydicom.Dataset],
    dest: Path,
    *,
    uid_seed: str,
    edit: Callable[[pydicom.Dataset], None] | None = None,
    **tags,
) -> list[Path]:
    """Write copies of ``datasets`` into ``dest`` as a new series.

    Parameters
    ----------
    datasets : iterable of pydicom.Dataset
        Source images (modified copies are written; the sources are not changed).
    dest : Path
        Output folder (created).
    uid_seed : str
        Entropy for the new SeriesInstanceUID, so reruns write identical files.
    edit : callable, optional
        Called on each copy after ``tags`` are set (e.g. to delete a tag).
    **tags
        DICOM keywords to set on every image, e.g. ``SeriesNumber=5``.

    Returns
    -------
    list of Path
        Written files, InstanceNumber renumbered 1..N in input order.
    """
    dest.mkdir(parents=True, exist_ok=True)
    series_uid = generate_uid(entropy_srcs=[uid_seed])
    written = []
    for number, source in enumerate(datasets, start=1):
        ds = copy.deepcopy(source)
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[uid_seed, str(number)])
        ds.InstanceNumber = number
        for keyword, value in tags.items():
            setattr(ds, keyword, value)
        if edit is not None:
            edit(ds)
        path = dest / f"IM{number:05d}.dcm"
        ds.save_as(path, enforce_file_format=False)
        written.append(path)
    return written
