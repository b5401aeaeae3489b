"""Which series becomes T1w and which BOLD: the default rules of config.yaml."""

from __future__ import annotations

import pytest
import yaml
from conftest import REPO

from neurofusion.dicom.anonymise import anonymise_sidecar
from neurofusion.dicom.discovery import SeriesInfo
from neurofusion.dicom.select import rules_from_config, select_series
from neurofusion.errors import InputError

RULES = rules_from_config(yaml.safe_load((REPO / "config.yaml").read_text())["dicom"])


def _series(number, description, volumes=1, image_type=("ORIGINAL", "PRIMARY", "M", "ND")):
    return SeriesInfo(
        uid=f"1.2.{number}",
        number=number,
        description=description,
        protocol=description,
        image_type=image_type,
        n_slices=30,
        n_volumes=volumes,
    )


SESSION = [
    _series(1, "AAHScout"),
    _series(2, "localizer_3plane"),
    _series(3, "t1_mprage_sag_p2_iso"),
    _series(4, "ep2d_bold_rest_SBRef"),
    _series(5, "ep2d_bold_rest", volumes=250),
    _series(6, "MoCoSeries", volumes=250, image_type=("DERIVED", "PRIMARY", "MOCO")),
    _series(7, "dti_30dir", volumes=31),
    _series(8, "gre_field_mapping"),
]


@pytest.mark.parametrize(
    ("role", "number"),
    [("T1w", 3), ("bold", 5)],
)
def test_typical_siemens_session(role, number):
    assert select_series(SESSION, RULES[role], "01", "/data/01").number == number


@pytest.mark.parametrize(
    "description",
    ["MPRAGE", "Sag T1 BRAVO", "3D_T1w", "t1_mp2rage_sag_UNI", "SPGR 1mm", "T1W_3D_TFE"],
)
def test_t1_names_recognised(description):
    assert RULES["T1w"].matches(_series(1, description))


@pytest.mark.parametrize(
    "description",
    ["rsfMRI", "Resting State fMRI", "ep2d_bold_moco_off", "BOLD_rest_run1", "epiRT"],
)
def test_bold_names_recognised(description):
    assert RULES["bold"].matches(_series(1, description, volumes=200))


@pytest.mark.parametrize("description", ["t1_map", "MP2RAGE_INV1", "localizer_T1"])
def test_t1_lookalikes_excluded(description):
    assert not RULES["T1w"].matches(_series(1, description))


def test_more_volumes_beat_higher_series_number():
    series = [_series(5, "rest", volumes=240), _series(9, "rest", volumes=80)]
    assert select_series(series, RULES["bold"], "01", "/d").number == 5


def test_on_multiple_error_policy():
    series = [_series(5, "rest", volumes=240), _series(9, "rest", volumes=80)]
    with pytest.raises(InputError, match=r"dicom\.on_multiple is 'error'"):
        select_series(series, RULES["bold"], "01", "/d", on_multiple="error")


def test_anonymise_keeps_scan_fields_and_drops_identity():
    sidecar = {
        "PatientPosition": "HFS",
        "PatientName": "X",
        "PatientSex": "F",
        "InstitutionName": "Y",
        "StationName": "Z",
        "RepetitionTime": 2.0,
        "SliceTiming": [0, 1],
    }
    assert anonymise_sidecar(sidecar) == {
        "PatientPosition": "HFS",
        "RepetitionTime": 2.0,
        "SliceTiming": [0, 1],
    }
