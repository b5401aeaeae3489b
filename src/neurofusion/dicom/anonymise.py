"""Remove what identifies a person or a site from BIDS sidecars.

dcm2niix's ``-ba y`` already drops PatientName, PatientID, PatientBirthDate and the
acquisition date. It keeps institution, station and operator fields, and free-text
study descriptions that sites often fill with names (``Research^Rorden``), so those are
removed here as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Sidecar keys removed outright.
IDENTIFYING_KEYS = frozenset(
    {
        "AccessionNumber",
        "AcquisitionDate",
        "AcquisitionDateTime",
        "ContentDate",
        "DeviceSerialNumber",
        "InstitutionAddress",
        "InstitutionName",
        "InstitutionalDepartmentName",
        "OperatorsName",
        "PerformingPhysicianName",
        "ProcedureStepDescription",
        "ReferringPhysicianName",
        "SeriesDate",
        "StationName",
        "StudyDate",
        "StudyDescription",
        "StudyID",
        "StudyInstanceUID",
        "SeriesInstanceUID",
    }
)

#: Patient* keys that describe the scan, not the person, and are kept.
KEPT_PATIENT_KEYS = frozenset({"PatientPosition"})


def anonymise_sidecar(sidecar: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of a BIDS sidecar without identifying fields.

    Parameters
    ----------
    sidecar : mapping
        dcm2niix's JSON sidecar.

    Returns
    -------
    dict
        The sidecar less :data:`IDENTIFYING_KEYS` and every ``Patient*`` key other than
        :data:`KEPT_PATIENT_KEYS`.
    """
    return {
        key: value
        for key, value in sidecar.items()
        if key not in IDENTIFYING_KEYS
        and not (key.startswith("Patient") and key not in KEPT_PATIENT_KEYS)
    }
