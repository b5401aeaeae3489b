"""No patient or site identity leaves the scanner files: outputs and logs are grepped."""

from __future__ import annotations

import gzip

import pytest
from conftest import run_snakemake
from dicomkit import first_volume, read_series, write_series

pytestmark = [pytest.mark.workflow, pytest.mark.shared]

IDENTITY = {
    "PatientName": "Qwertzuiop^Xanthippe",
    "PatientID": "PID8675309X",
    "PatientBirthDate": "19230405",
    "AccessionNumber": "ACC5550199",
    "InstitutionName": "Zorblax Memorial Infirmary",
    "InstitutionAddress": "42 Flummox Lane, Quuxbridge",
    "ReferringPhysicianName": "Vexley^Ormond",
}
NEEDLES = [
    "Qwertzuiop",
    "Xanthippe",
    "PID8675309X",
    "19230405",
    "ACC5550199",
    "Zorblax",
    "Flummox",
    "Quuxbridge",
    "Vexley",
]


def _contents(path):
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    return data.decode("latin-1")


def test_no_identity_in_any_output_or_log(shared_data, tmp_path):
    bold = read_series(shared_data / "dicom" / "ge_rtia" / "dicom")
    for subject in ("01", "02"):
        folder = tmp_path / "dicom" / f"sub-{subject}"
        write_series(
            first_volume(bold),
            folder / "t1",
            uid_seed=f"{subject}-t1",
            SeriesNumber=1,
            SeriesDescription="t1_mprage_sag",
            **IDENTITY,
        )
        write_series(bold, folder / "bold", uid_seed=f"{subject}-bold", **IDENTITY)
    (tmp_path / "participants.tsv").write_text("participant_id\tgroup\n01\tA\n02\tB\n")
    config = {
        "participants": "participants.tsv",
        "positive_group": "A",
        "output_dir": "out",
        "input": {"kind": "dicom", "path": "dicom"},
    }
    run = run_snakemake(tmp_path, config, "--cores", "2", "rawdata")
    assert run.returncode == 0, run.stdout[-3000:]
    # the planted strings really are in the input, so the grep below can fail
    assert "Zorblax" in _contents(next((tmp_path / "dicom" / "sub-01" / "bold").iterdir()))
    scanned = [p for root in ("out", ".snakemake/log") for p in (tmp_path / root).rglob("*")]
    scanned = [p for p in scanned if p.is_file()]
    assert len(scanned) > 10
    leaks = {
        (str(p.relative_to(tmp_path)), needle)
        for p in scanned
        for needle in NEEDLES
        if needle.lower() in _contents(p).lower()
    }
    leaks |= {("snakemake stdout", n) for n in NEEDLES if n.lower() in run.stdout.lower()}
    assert not leaks
