"""The convert stage on four real scanner series (Siemens mosaic VB12/VD13, GE classic).

Each series is one subject of a func-only dataset; dcm2niix's reference conversion of
each (in ../shared/data/dicom/*/reference) is the truth.
"""

from __future__ import annotations

import json
import re

import nibabel as nib
import numpy as np
import pytest
from conftest import run_snakemake

from neurofusion.bids.layout import raw_image_path

pytestmark = [pytest.mark.workflow, pytest.mark.shared]

SERIES = {
    "01": "siemens_b12_mosaic",
    "02": "siemens_d13_mosaic",
    "03": "ge_protocol_data_block",
    "04": "ge_rtia",
}


@pytest.fixture(scope="module")
def real_run(shared_data, tmp_path_factory):
    work = tmp_path_factory.mktemp("real_dicom")
    (work / "dicom").mkdir()
    for subject, folder in SERIES.items():
        (work / "dicom" / f"sub-{subject}").symlink_to(shared_data / "dicom" / folder / "dicom")
    groups = "\n".join(f"sub-{s}\t{'A' if int(s) % 2 else 'B'}" for s in SERIES)
    (work / "participants.tsv").write_text(f"participant_id\tgroup\n{groups}\n")
    config = {
        "participants": "participants.tsv",
        "positive_group": "A",
        "output_dir": "out",
        "input": {"kind": "dicom", "path": "dicom", "modalities": ["bold"]},
    }
    dry = run_snakemake(work, config, "-n", "rawdata")
    run = run_snakemake(work, config, "--cores", "2", "rawdata")
    assert run.returncode == 0, run.stdout[-4000:]
    again = run_snakemake(work, config, "-n", "rawdata")
    return work, dry, again


def _reference(shared_data, subject):
    folder = shared_data / "dicom" / SERIES[subject] / "reference"
    (image,) = folder.glob("*.nii.gz")
    (sidecar,) = folder.glob("*.json")
    return nib.load(image), json.loads(sidecar.read_text())


@pytest.mark.parametrize("subject", sorted(SERIES))
def test_bold_matches_reference(real_run, shared_data, subject):
    work, _, _ = real_run
    ref_img, ref_json = _reference(shared_data, subject)
    raw = work / "out" / "rawdata"
    img = nib.load(raw_image_path(raw, subject, "bold"))
    sidecar = json.loads(raw_image_path(raw, subject, "bold", ".json").read_text())
    assert img.shape == ref_img.shape
    assert np.abs(img.affine - ref_img.affine).max() < 1e-3
    assert sidecar["RepetitionTime"] == ref_json["RepetitionTime"]
    np.testing.assert_allclose(sidecar["SliceTiming"], ref_json["SliceTiming"], atol=1e-3)
    assert sidecar["TaskName"] == "rest"
    np.testing.assert_array_equal(np.asarray(img.dataobj), np.asarray(ref_img.dataobj))


@pytest.mark.parametrize("subject", sorted(SERIES))
def test_sidecar_has_no_site_or_person(real_run, subject):
    work, _, _ = real_run
    sidecar = json.loads(
        raw_image_path(work / "out" / "rawdata", subject, "bold", ".json").read_text()
    )
    for key in ("InstitutionName", "InstitutionAddress", "PatientName", "PatientID"):
        assert key not in sidecar


def test_scans_tsv_records_source_series(real_run):
    work, _, _ = real_run
    scans = (work / "out" / "rawdata" / "sub-03" / "sub-03_scans.tsv").read_text().splitlines()
    assert scans[1].split("\t")[:3] == [
        "func/sub-03_task-rest_bold.nii.gz",
        "4",
        "Axial EPI-FMRI (Interleaved I to S)",
    ]


def test_non_dicom_file_skipped_with_warning(real_run):
    work, _, _ = real_run
    log = (work / "out" / "logs" / "convert" / "sub-03.log").read_text()
    assert re.search(r"WARNING .*sub-03: skipped .*README-Series\.txt", log)


def test_dry_run_plans_one_convert_job_per_participant(real_run):
    _, dry, _ = real_run
    assert dry.returncode == 0, dry.stdout[-3000:]
    assert re.search(r"^convert\s+4$", dry.stdout, re.MULTILINE), dry.stdout[-3000:]


def test_second_dry_run_has_nothing_to_do(real_run):
    _, _, again = real_run
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout, again.stdout[-3000:]
