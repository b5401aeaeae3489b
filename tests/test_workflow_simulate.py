"""The demo path: input.kind simulate generates DICOM per subject, then converts it."""

from __future__ import annotations

import json
import re

import nibabel as nib
import pytest
from conftest import run_snakemake

pytestmark = pytest.mark.workflow

TINY = {"simulate": {"preset": "tiny", "n_per_group": 1, "seed": 3}}


@pytest.fixture(scope="module")
def tiny_rawdata(tmp_path_factory):
    work = tmp_path_factory.mktemp("simulate_workflow")
    run = run_snakemake(work, TINY, "--cores", "2", "rawdata")
    assert run.returncode == 0, run.stdout[-3000:]
    return work


def test_default_config_plans_the_demo_cohort(tmp_path):
    run = run_snakemake(tmp_path, {}, "-n", "rawdata")
    assert run.returncode == 0, run.stdout[-3000:]
    assert re.search(r"^simulate_subject\s+16$", run.stdout, re.MULTILINE)
    assert re.search(r"^convert\s+16$", run.stdout, re.MULTILINE)


def test_simulated_subjects_become_bids(tiny_rawdata):
    raw = tiny_rawdata / "results" / "rawdata"
    participants = (raw / "participants.tsv").read_text().splitlines()
    assert participants[0].split("\t")[:2] == ["participant_id", "group"]
    assert [row.split("\t")[1] for row in participants[1:]] == ["StD", "HC"]
    for subject in ("001", "002"):
        bold = nib.load(raw / f"sub-{subject}" / "func" / f"sub-{subject}_task-rest_bold.nii.gz")
        sidecar = json.loads(
            (raw / f"sub-{subject}" / "func" / f"sub-{subject}_task-rest_bold.json").read_text()
        )
        assert bold.shape == (60, 60, 26, 70)  # tiny preset: 60 volumes + 10 dummies
        assert sidecar["RepetitionTime"] == 2.0 and len(sidecar["SliceTiming"]) == 26
        t1 = nib.load(raw / f"sub-{subject}" / "anat" / f"sub-{subject}_T1w.nii.gz")
        assert t1.ndim == 3
    assert (tiny_rawdata / "results" / "simulated" / "truth" / "sub-001" / "motion.tsv").exists()


def test_rerun_has_nothing_to_do(tiny_rawdata):
    run = run_snakemake(tiny_rawdata, TINY, "-n", "rawdata")
    assert "Nothing to be done" in run.stdout, run.stdout[-2000:]


def test_adding_subjects_plans_only_the_new_ones(tiny_rawdata):
    bigger = {"simulate": {**TINY["simulate"], "n_per_group": 2}}
    run = run_snakemake(tiny_rawdata, bigger, "-n", "rawdata")
    assert run.returncode == 0
    planned = set(re.findall(r"wildcards: subject=(\w+)", run.stdout))
    assert planned == {"003", "004"}, run.stdout[-3000:]
