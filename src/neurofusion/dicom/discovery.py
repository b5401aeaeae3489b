"""Find the DICOM series in a subject's folder and check that each one is complete.

pydicom reads every file's header; files that are not DICOM, or whose pixel data are
truncated, are skipped with a warning. A series is complete when every slice position
holds the same number of images and the instance numbers have no gaps (what a dropped
file leaves behind). The prescribed number of volumes in the header
(NumberOfTemporalPositions) is not trusted: scanners and anonymisers often keep it when
a run is stopped early, which leaves a valid, shorter series.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from pydicom.errors import InvalidDicomError

from neurofusion.errors import InputError

log = logging.getLogger(__name__)

#: Decimal places (mm) to which ImagePositionPatient is rounded to group slices.
POSITION_DECIMALS = 2


@dataclass
class SeriesInfo:
    """One DICOM series as found on disk.

    Attributes
    ----------
    uid : str
        SeriesInstanceUID.
    number : int
        SeriesNumber (0 when absent).
    description : str
        SeriesDescription ("" when absent).
    protocol : str
        ProtocolName ("" when absent).
    image_type : tuple of str
        ImageType values, upper case.
    files : list of Path
        The readable files of the series, sorted by path.
    n_slices : int
        Slices per volume (for mosaics, the number of files is the volume count).
    n_volumes : int
        Number of volumes (time points); 1 for a 3D image.
    """

    uid: str
    number: int
    description: str
    protocol: str
    image_type: tuple[str, ...]
    files: list[Path] = field(default_factory=list)
    n_slices: int = 0
    n_volumes: int = 0

    @property
    def ndim(self) -> int:
        """3 for a single volume, 4 for a time series."""
        return 4 if self.n_volumes > 1 else 3

    @property
    def label(self) -> str:
        """Human-readable name used in logs and errors."""
        return f"series {self.number} '{self.description or self.protocol}'"


def _iter_files(root: Path):
    for folder, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(folder) / name


def _read_header(path: Path) -> pydicom.Dataset | None:
    """Read a file as DICOM; None when it is not an image of a series or is truncated."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True)
    except (InvalidDicomError, OSError, ValueError, EOFError, AttributeError, KeyError):
        return None
    if "SeriesInstanceUID" not in ds or "PixelData" not in ds:
        return None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    expected = int(ds.Rows) * int(ds.Columns) * int(ds.BitsAllocated) // 8 * frames
    expected *= int(ds.get("SamplesPerPixel", 1))
    encapsulated = ds.file_meta.get("TransferSyntaxUID", pydicom.uid.ExplicitVRLittleEndian)
    if not pydicom.uid.UID(encapsulated).is_compressed and len(ds.PixelData) < expected:
        return None
    return ds


def discover_series(root: str | Path, subject: str) -> list[SeriesInfo]:
    """Group the DICOM files under ``root`` (any nesting) into complete series.

    Parameters
    ----------
    root : str or Path
        The subject's DICOM folder.
    subject : str
        Participant label, used in warnings and errors.

    Returns
    -------
    list of SeriesInfo
        Sorted by SeriesNumber, then UID.

    Raises
    ------
    InputError
        When the folder holds no DICOM image, or a series misses slices or volumes.
    """
    root = Path(root)
    groups: dict[str, list[tuple[Path, pydicom.Dataset]]] = defaultdict(list)
    skipped = []
    for path in _iter_files(root):
        ds = _read_header(path)
        if ds is None:
            skipped.append(path)
        else:
            groups[str(ds.SeriesInstanceUID)].append((path, ds))
    for path in skipped:
        log.warning(
            "sub-%s: skipped %s: not a readable DICOM image", subject.removeprefix("sub-"), path
        )
    if not groups:
        raise InputError(
            subject,
            root,
            "no readable DICOM image in the participant's folder",
            "copy the participant's DICOM export into this folder, or remove the "
            "participant from participants.tsv",
        )
    series = [_summarise(uid, members, subject) for uid, members in groups.items()]
    return sorted(series, key=lambda s: (s.number, s.uid))


def _summarise(uid: str, members: list[tuple[Path, pydicom.Dataset]], subject: str) -> SeriesInfo:
    first = members[0][1]
    info = SeriesInfo(
        uid=uid,
        number=int(first.get("SeriesNumber", 0) or 0),
        description=str(first.get("SeriesDescription", "") or ""),
        protocol=str(first.get("ProtocolName", "") or ""),
        image_type=tuple(str(v).upper() for v in (first.get("ImageType") or ())),
        files=sorted(path for path, _ in members),
    )
    datasets = [ds for _, ds in members]
    folder = members[0][0].parent
    frames = int(first.get("NumberOfFrames", 1) or 1)
    if "MOSAIC" in info.image_type or frames > 1:
        info.n_slices = frames
        info.n_volumes = len(datasets) if "MOSAIC" in info.image_type else frames
    else:
        positions = Counter(
            tuple(
                round(float(v), POSITION_DECIMALS)
                for v in ds.get("ImagePositionPatient", (0, 0, 0))
            )
            for ds in datasets
        )
        counts = set(positions.values())
        info.n_slices = len(positions)
        info.n_volumes = max(counts)
        if len(counts) > 1:
            raise InputError(
                subject,
                folder,
                f"{info.label} is incomplete: slice positions hold {sorted(counts)} images "
                f"each (files are missing or unreadable)",
                "re-export the series from the scanner or PACS, or exclude the participant",
            )
    _check_instance_numbers(info, datasets, subject, folder)
    return info


def _check_instance_numbers(info: SeriesInfo, datasets, subject: str, folder: Path) -> None:
    numbers = sorted({int(ds.InstanceNumber) for ds in datasets if "InstanceNumber" in ds})
    if len(numbers) < 2:
        return
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise InputError(
            subject,
            folder,
            f"{info.label} is incomplete: instance numbers {shown} are missing "
            f"({len(missing)} image(s) lost or unreadable)",
            "re-export the series from the scanner or PACS, or exclude the participant",
        )
