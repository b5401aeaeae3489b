"""Write simulated images as Siemens-style classic MR Image Storage DICOM (one file per slice).

Headers are plausible for a Siemens 3 T scanner (equipment, sequence and timing fields,
geometry in LPS, one ``AcquisitionTime`` per slice so that dcm2niix derives
``SliceTiming``), and carry fake patient identities for the anonymisation step to remove.
UIDs derive from the cohort seed and participant id, and dates are fixed, so reruns are
bit-identical.

``pydicom.dcmwrite`` re-encodes all ~70 elements of each of the 8 000 files of a paper-preset
BOLD run (about 3-4 ms per file, 30 s a run). Here the elements shared by a series are
encoded once with pydicom, and only the eight per-file elements (instance UID, times,
numbers, position, pixels) are encoded per file (:func:`_element`), then the byte strings
are joined in ascending tag order as Part 10 requires.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import struct
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, MRImageStorage

from neurofusion.simulate.geometry import RAS_TO_LPS, Grid

#: Patient and site fields that ``identity`` may override (all identifying).
IDENTITY_KEYS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "AccessionNumber",
    "InstitutionName",
    "InstitutionAddress",
    "ReferringPhysicianName",
)

#: Elements that change from file to file within a series (ascending tags) and their VR.
_PER_FILE = {
    "SOPInstanceUID": "UI",
    "AcquisitionTime": "TM",
    "ContentTime": "TM",
    "AcquisitionNumber": "IS",
    "InstanceNumber": "IS",
    "ImagePositionPatient": "DS",
    "SliceLocation": "DS",
    "PixelData": "OW",
}

_UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/neurofusion/simulate")
_FAMILY_NAMES = ("MUSTERMANN", "DOE", "ROE", "SMITH", "MEIER", "ROSSI", "NOVAK", "TANAKA")
_GIVEN_NAMES = {"F": ("ERIKA", "JANE", "ANNA", "MARIA"), "M": ("MAX", "JOHN", "PAUL", "IVAN")}


def uid(*parts: Any) -> str:
    """Deterministic DICOM UID from the given parts (seed, id, series...).

    A UUID-derived UID (PS3.5 B.2): ``2.25.`` + the integer of the name-based (version 5)
    UUID of the parts. (pydicom's ``generate_uid(prefix=None)`` ignores its entropy and
    returns a random UUID.)
    """
    name = "/".join(str(part) for part in parts)
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, name).int}"


def fake_identity(rng: np.random.Generator, sex: str, age: int, study_date: str) -> dict:
    """Plausible fake patient and site fields, overridable one by one.

    Parameters
    ----------
    rng : numpy.random.Generator
        The subject's ``identity`` stream.
    sex : str
        ``M`` or ``F``.
    age : int
        Age in years at the study date.
    study_date : str
        ``YYYYMMDD``.

    Returns
    -------
    dict
        Values for every key of :data:`IDENTITY_KEYS`.
    """
    study = _dt.date(int(study_date[:4]), int(study_date[4:6]), int(study_date[6:]))
    birth = study - _dt.timedelta(days=int(365.25 * age + rng.integers(1, 360)))
    family = _FAMILY_NAMES[rng.integers(len(_FAMILY_NAMES))]
    given = _GIVEN_NAMES[sex][rng.integers(len(_GIVEN_NAMES[sex]))]
    return {
        "PatientName": f"{family}^{given}",
        "PatientID": f"PID{rng.integers(10**7, 10**8)}",
        "PatientBirthDate": birth.strftime("%Y%m%d"),
        "AccessionNumber": f"ACC{rng.integers(10**6, 10**7)}",
        "InstitutionName": "Simulated University Hospital",
        "InstitutionAddress": f"{rng.integers(1, 200)} Imaging Way, Synthville",
        "ReferringPhysicianName": f"DR^{_FAMILY_NAMES[rng.integers(len(_FAMILY_NAMES))]}",
    }


def write_series(
    folder: str | Path,
    image: np.ndarray,
    grid: Grid,
    header: Mapping[str, Any],
    acquisition_times_s: np.ndarray,
    uid_parts: Sequence[Any],
) -> int:
    """Write one series, one file per slice and volume, into an existing folder.

    Voxel (i, j, k) of ``image`` becomes column i, row (nj - 1 - j) of slice k, which is
    the layout dcm2niix turns back into ``grid`` exactly.

    Parameters
    ----------
    folder : path
        Existing (empty) folder.
    image : numpy.ndarray
        (ni, nj, nk) or (ni, nj, nk, nt) uint16 pixel values.
    grid : Grid
        Geometry of the first three axes.
    header : mapping
        Series-constant elements by DICOM keyword (patient, study, equipment, sequence,
        ``SeriesInstanceUID``, ``SeriesNumber``...).
    acquisition_times_s : numpy.ndarray
        (nt, nk) acquisition time of each slice in seconds after midnight.
    uid_parts : sequence
        Entropy for the per-file SOP instance UIDs (e.g. seed, participant, series number).

    Returns
    -------
    int
        Number of files written.
    """
    folder = Path(folder)
    volumes = image[..., None] if image.ndim == 3 else image
    if volumes.dtype != np.uint16:
        raise TypeError(f"pixel data must be uint16, not {volumes.dtype}")
    ni, nj, nk, nt = volumes.shape
    zooms = grid.zooms
    base = Dataset()
    for keyword, value in header.items():
        setattr(base, keyword, value)
    row_dir = RAS_TO_LPS @ grid.affine[:3, 0] / zooms[0]
    col_dir = -RAS_TO_LPS @ grid.affine[:3, 1] / zooms[1]
    base.ImageOrientationPatient = [_ds(v) for v in np.r_[row_dir, col_dir]]
    base.PixelSpacing = [_ds(zooms[1]), _ds(zooms[0])]
    base.SliceThickness = _ds(zooms[2])
    base.SpacingBetweenSlices = _ds(zooms[2])
    base.Rows, base.Columns = nj, ni
    base.SamplesPerPixel = 1
    base.PhotometricInterpretation = "MONOCHROME2"
    base.BitsAllocated, base.BitsStored, base.HighBit, base.PixelRepresentation = 16, 12, 11, 0
    base.SOPClassUID = MRImageStorage
    segments = _shared_segments(base)
    meta_head, meta_tail = _meta_segments()
    normal = np.cross(row_dir, col_dir)
    instance = 0
    for t in range(nt):
        for k in range(nk):
            instance += 1
            position = RAS_TO_LPS @ (grid.affine[:3, :3] @ [0, nj - 1, k] + grid.affine[:3, 3])
            clock = _tm(acquisition_times_s[t, k])
            sop_uid = uid(*uid_parts, instance)
            pixels = np.ascontiguousarray(volumes[:, ::-1, k, t].T).tobytes()
            values = {
                "SOPInstanceUID": sop_uid,
                "AcquisitionTime": clock,
                "ContentTime": clock,
                "AcquisitionNumber": str(t + 1),
                "InstanceNumber": str(instance),
                "ImagePositionPatient": "\\".join(_ds(v) for v in position),
                "SliceLocation": _ds(float(normal @ position)),
                "PixelData": pixels,
            }
            meta = meta_head + _element(0x00020003, "UI", sop_uid) + meta_tail
            parts = [b"\0" * 128, b"DICM", _element(0x00020000, "UL", len(meta)), meta]
            for segment, keyword in zip(segments, _PER_FILE, strict=False):
                parts.append(segment)
                parts.append(
                    _element(tag_for_keyword(keyword), _PER_FILE[keyword], values[keyword])
                )
            parts.append(segments[-1])
            (folder / f"MR.{instance:06d}.dcm").write_bytes(b"".join(parts))
    return instance


def _shared_segments(base: Dataset) -> list[bytes]:
    """Encode the series-constant elements once (pydicom), cut at the per-file tags.

    Returns
    -------
    list of bytes
        ``segments[m]`` holds the constant elements whose tags fall between per-file tags
        m - 1 and m of :data:`_PER_FILE`; the last one those after the last per-file tag.
    """
    per_file_tags = [tag_for_keyword(keyword) for keyword in _PER_FILE]
    segments: list[list[bytes]] = [[] for _ in range(len(per_file_tags) + 1)]
    for elem in base:  # a Dataset iterates in ascending tag order
        slot = int(np.searchsorted(per_file_tags, int(elem.tag)))
        fp = DicomBytesIO()
        fp.is_little_endian = True
        fp.is_implicit_VR = False
        write_data_element(fp, elem)
        segments[slot].append(fp.getvalue())
    return [b"".join(seg) for seg in segments]


def _meta_segments() -> tuple[bytes, bytes]:
    """File meta elements before and after MediaStorageSOPInstanceUID (0002,0003).

    pydicom encodes the whole group once with a placeholder instance UID; the placeholder
    element is cut out so that each file's own UID can be spliced in.
    """
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = "1.2"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_file_meta_info(fp, meta, enforce_standard=True)
    encoded = fp.getvalue()[12:]  # drop the group length element, recomputed per file
    placeholder = _element(0x00020003, "UI", "1.2")
    head, tail = encoded.split(placeholder)
    return head, tail


def _element(tag: int, vr: str, value: str | bytes | int) -> bytes:
    """One explicit-VR little-endian data element, by the rules of DICOM PS3.5 7.1.2.

    Used for the eight per-file elements only (pydicom's encoder costs about 1.5 ms per
    file for them, a third of the BOLD run's simulation time); every file is read back with
    pydicom in the tests. Text values are padded to even length (UI with NUL, others with a
    space); ``UL`` takes an int; ``OW`` takes bytes.
    """
    if vr == "UL":
        payload = struct.pack("<I", value)
    elif vr == "OW":
        payload = value
    else:
        payload = value.encode("ascii")
        if len(payload) % 2:
            payload += b"\0" if vr == "UI" else b" "
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr.encode("ascii")
    if vr == "OW":
        return head + struct.pack("<HI", 0, len(payload)) + payload
    return head + struct.pack("<H", len(payload)) + payload


def _ds(value: float) -> str:
    """Decimal string of at most 16 characters, as DICOM DS requires."""
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _tm(seconds: float) -> str:
    """``HHMMSS.FFFFFF`` for a time of day given in seconds after midnight (microseconds)."""
    micro = round(seconds * 1e6)
    hours, rest = divmod(micro, 3600 * 10**6)
    minutes, rest = divmod(rest, 60 * 10**6)
    secs, micro = divmod(rest, 10**6)
    return f"{hours:02d}{minutes:02d}{secs:02d}.{micro:06d}"


#: Folder, SeriesNumber and sequence fields of the T1 series (Siemens MPRAGE, study values).
T1_SERIES = {
    "folder": "02_t1_mprage_sag_p2_iso",
    "SeriesNumber": 2,
    "SeriesDescription": "t1_mprage_sag_p2_iso",
    "ProtocolName": "t1_mprage_sag_p2_iso",
    "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND", "NORM"],
    "ScanningSequence": ["GR", "IR"],
    "SequenceVariant": ["SK", "SP", "MP"],
    "ScanOptions": "IR",
    "MRAcquisitionType": "3D",
    "SequenceName": "*tfl3d1_16ns",
    "RepetitionTime": "2530",
    "EchoTime": "3.39",
    "InversionTime": "1100",
    "FlipAngle": "7",
    "EchoTrainLength": 1,
    "PixelBandwidth": "200",
    "InPlanePhaseEncodingDirection": "ROW",
    "WindowCenter": "600",
    "WindowWidth": "1400",
}
#: The same for the resting-state BOLD series (2D gradient-echo EPI).
BOLD_SERIES = {
    "folder": "03_ep2d_bold_rest",
    "SeriesNumber": 3,
    "SeriesDescription": "ep2d_bold_rest",
    "ProtocolName": "ep2d_bold_rest",
    "ImageType": ["ORIGINAL", "PRIMARY", "M", "ND"],
    "ScanningSequence": "EP",
    "SequenceVariant": ["SK", "SS"],
    "ScanOptions": "FS",
    "MRAcquisitionType": "2D",
    "EchoTime": "30",
    "FlipAngle": "90",
    "PixelBandwidth": "2232",
    "InPlanePhaseEncodingDirection": "COL",
    "WindowCenter": "500",
    "WindowWidth": "1000",
}
#: Fields shared by every series of a session (equipment and site).
SESSION_FIELDS = {
    "SpecificCharacterSet": "ISO_IR 100",
    "Modality": "MR",
    "Manufacturer": "SIEMENS",
    "ManufacturerModelName": "Prisma_fit",
    "SoftwareVersions": "syngo MR E11",
    "DeviceSerialNumber": "35123",
    "StationName": "MRC35123",
    "InstitutionalDepartmentName": "Radiology",
    "MagneticFieldStrength": "3",
    "ImagingFrequency": "123.251",
    "ImagedNucleus": "1H",
    "NumberOfAverages": "1",
    "PercentSampling": "100",
    "PercentPhaseFieldOfView": "100",
    "TransmitCoilName": "Body",
    "ReceiveCoilName": "HeadNeck_20",
    "PatientPosition": "HFS",
    "BodyPartExamined": "BRAIN",
    "StudyDescription": "Research^Neurofusion",
    "StudyID": "1",
    "PositionReferenceIndicator": "",
}
#: Series start after the study start (s): T1 first, BOLD after it.
SERIES_OFFSET_S = {"T1": 300.0, "BOLD": 720.0}


@dataclasses.dataclass(frozen=True)
class Session:
    """Who was scanned, when: the patient-level part of every header.

    Attributes
    ----------
    seed : int
        Cohort seed (UID entropy).
    participant_id : str
    identity : dict
        Values for :data:`IDENTITY_KEYS`.
    sex : str
        ``M`` or ``F``.
    age : int
        Years.
    study_date : str
        ``YYYYMMDD``.
    study_time_s : float
        Study start, seconds after midnight.
    """

    seed: int
    participant_id: str
    identity: dict
    sex: str
    age: int
    study_date: str
    study_time_s: float

    def header(self, series: Mapping[str, Any], start_s: float) -> dict:
        """Series-constant header fields of one series starting at ``start_s``."""
        fields = {**SESSION_FIELDS, **self.identity}
        fields.update({k: v for k, v in series.items() if k != "folder"})
        fields.update(
            PatientSex=self.sex,
            PatientAge=f"{self.age:03d}Y",
            StudyDate=self.study_date,
            SeriesDate=self.study_date,
            AcquisitionDate=self.study_date,
            ContentDate=self.study_date,
            StudyTime=_tm(self.study_time_s),
            SeriesTime=_tm(start_s),
            StudyInstanceUID=uid(self.seed, self.participant_id, "study"),
            FrameOfReferenceUID=uid(self.seed, self.participant_id, "frame"),
            SeriesInstanceUID=uid(self.seed, self.participant_id, series["SeriesNumber"]),
        )
        return fields


def write_session(
    folder: str | Path,
    session: Session,
    t1: np.ndarray,
    t1_grid: Grid,
    bold: np.ndarray,
    bold_grid: Grid,
    slice_times_s: np.ndarray,
    tr_s: float,
) -> None:
    """Write the T1 and BOLD series of one subject, one sub-folder per series.

    Parameters
    ----------
    folder : path
        Existing folder that receives :data:`T1_SERIES` and :data:`BOLD_SERIES` folders.
    session : Session
    t1 : numpy.ndarray
        (ni, nj, nk) uint16 in the layout of ``t1_grid`` (the sagittal acquisition).
    t1_grid : Grid
    bold : numpy.ndarray
        (ni, nj, nk, nt) uint16 on ``bold_grid``, dummy volumes first.
    bold_grid : Grid
    slice_times_s : numpy.ndarray
        (nk,) slice acquisition times within the TR (s).
    tr_s : float
        Repetition time (s).
    """
    folder = Path(folder)
    t1_start = session.study_time_s + SERIES_OFFSET_S["T1"]
    bold_start = session.study_time_s + SERIES_OFFSET_S["BOLD"]
    n_volumes = bold.shape[3]
    matrix_t1 = [t1.shape[1], 0, 0, t1.shape[0]]
    matrix_bold = [0, bold.shape[0], bold.shape[1], 0]
    series = (
        (T1_SERIES, t1, t1_grid, np.full((1, t1.shape[2]), t1_start), matrix_t1, {}),
        (
            BOLD_SERIES,
            bold,
            bold_grid,
            bold_start + tr_s * np.arange(n_volumes)[:, None] + slice_times_s[None, :],
            matrix_bold,
            {
                "RepetitionTime": _ds(tr_s * 1000),
                "SequenceName": f"*epfid2d1_{bold.shape[1]}",
                "EchoTrainLength": bold.shape[1],
            },
        ),
    )
    for spec, pixels, grid, times, acquisition_matrix, extra in series:
        header = session.header(spec, float(times.min()))
        header.update(extra, AcquisitionMatrix=acquisition_matrix)
        target = folder / spec["folder"]
        target.mkdir()
        write_series(
            target,
            pixels,
            grid,
            header,
            times,
            (session.seed, session.participant_id, spec["SeriesNumber"]),
        )
