"""Bad DICOM input: each case stops its own subject with a clear message; others finish.

The series are modified copies of a real GE EPI series from ../shared/data (8 slices, 3
volumes); its first volume, renamed, plays the T1w image.
"""

from __future__ import annotations

import pytest
from conftest import run_snakemake
from dicomkit import first_volume, read_series, write_series

from neurofusion.bids.layout import raw_image_path

pytestmark = [pytest.mark.workflow, pytest.mark.shared]

T1_TAGS = {"SeriesNumber": 1, "SeriesDescription": "t1_mprage_sag", "ProtocolName": "t1_mprage"}


def _t1(bold, folder, key, datasets=None):
    write_series(datasets or first_volume(bold), folder / "t1", uid_seed=f"{key}-t1", **T1_TAGS)


def _bold(bold, folder, key, name="bold", **tags):
    return write_series(bold, folder / name, uid_seed=f"{key}-{name}", **tags)


def _drop_tr(ds):
    del ds.RepetitionTime


def build_cases(bold, root):
    """Write one folder per subject; return {subject: expected error fragment or None}."""
    cases = {}

    def subject(label, expected):
        cases[label] = expected
        folder = root / f"sub-{label}"
        return folder

    for label in ("good1", "good3"):
        folder = subject(label, None)
        _t1(bold, folder, label)
        _bold(bold, folder, label)
    folder = subject("junk", None)  # unreadable extras, complete series: warning only
    _t1(bold, folder, "junk")
    files = _bold(bold, folder, "junk")
    (folder / "bold" / "notes.txt").write_text("scanner operator notes, not DICOM\n")
    (folder / "bold" / "IM_truncated_copy.dcm").write_bytes(files[0].read_bytes()[:-2000])
    subject("nofolder", "the participant has no DICOM folder")
    folder = subject("empty", "no readable DICOM image in the participant's folder")
    folder.mkdir()
    (folder / "readme.txt").write_text("nothing here\n")
    folder = subject("truncated", "is incomplete")
    _t1(bold, folder, "truncated")
    files = _bold(bold, folder, "truncated")
    files[10].write_bytes(files[10].read_bytes()[:-3000])
    folder = subject("nobold", "no DICOM series looks like the bold image")
    _t1(bold, folder, "nobold")
    folder = subject("twobold", None)  # latest SeriesNumber wins, logged
    _t1(bold, folder, "twobold")
    _bold(bold, folder, "twobold", name="bold_a")
    _bold(bold, folder, "twobold", name="bold_b", SeriesNumber=5)
    folder = subject("tiebold", "2 series fit the bold role")
    _t1(bold, folder, "tiebold")
    _bold(bold, folder, "tiebold", name="bold_a")
    _bold(bold, folder, "tiebold", name="bold_b")
    folder = subject("notr", "has no RepetitionTime")
    _t1(bold, folder, "notr")
    write_series(bold, folder / "bold", uid_seed="notr-bold", edit=_drop_tr)
    folder = subject("bold3d", "is the only bold candidate but is 3D")
    _t1(bold, folder, "bold3d")
    _bold(first_volume(bold), folder, "bold3d")
    folder = subject("t14d", "is the only T1w candidate but is 4D")
    _t1(bold, folder, "t14d", datasets=bold)
    _bold(bold, folder, "t14d")
    return cases


@pytest.fixture(scope="module")
def bad_run(shared_data, tmp_path_factory):
    bold = read_series(shared_data / "dicom" / "ge_rtia" / "dicom")
    work = tmp_path_factory.mktemp("bad_input")
    cases = build_cases(bold, work / "dicom")
    participants = work / "participants.tsv"
    rows = [f"sub-{label}\t{'A' if i % 2 else 'B'}" for i, label in enumerate(cases)]
    participants.write_text("participant_id\tgroup\n" + "\n".join(rows) + "\n")
    config = {
        "participants": str(participants),
        "positive_group": "A",
        "output_dir": "out",
        "input": {"kind": "dicom", "path": str(work / "dicom"), "modalities": ["T1w", "bold"]},
    }
    run = run_snakemake(work, config, "rawdata", "--cores", "2", "--keep-going")
    return work, cases, run


def test_run_fails_overall(bad_run):
    _, _, run = bad_run
    assert run.returncode != 0, run.stdout[-3000:]


@pytest.mark.parametrize(
    "label",
    ["nofolder", "empty", "truncated", "nobold", "tiebold", "notr", "bold3d", "t14d"],
)
def test_bad_subject_error_names_subject_path_and_fix(bad_run, label):
    work, cases, _ = bad_run
    log = (work / "out" / "logs" / "convert" / f"sub-{label}.log").read_text()
    error = [line for line in log.splitlines() if " ERROR " in line]
    assert error, log
    assert f"sub-{label}:" in error[0]
    assert cases[label] in error[0]
    assert str(work / "dicom") in error[0] or f"sub-{label}" in error[0].split("[", 1)[1]
    assert "Fix:" in error[0]
    for role in ("T1w", "bold"):
        assert not raw_image_path(work / "out" / "rawdata", label, role).exists()


@pytest.mark.parametrize("label", ["good1", "good3", "junk", "twobold"])
def test_good_subjects_complete(bad_run, label):
    work, _, _ = bad_run
    raw = work / "out" / "rawdata"
    for role in ("T1w", "bold"):
        assert raw_image_path(raw, label, role).stat().st_size > 0
        assert raw_image_path(raw, label, role, ".json").stat().st_size > 0
    assert (raw / f"sub-{label}" / f"sub-{label}_scans.tsv").exists()


def test_unreadable_files_are_skipped_with_warning(bad_run):
    work, _, _ = bad_run
    log = (work / "out" / "logs" / "convert" / "sub-junk.log").read_text()
    assert "skipped" in log and "notes.txt" in log and "IM_truncated_copy.dcm" in log


def test_two_candidates_choice_is_logged(bad_run):
    work, _, _ = bad_run
    log = (work / "out" / "logs" / "convert" / "sub-twobold.log").read_text()
    assert "chose series 5" in log
    scans = (work / "out" / "rawdata" / "sub-twobold" / "sub-twobold_scans.tsv").read_text()
    assert "func/sub-twobold_task-rest_bold.nii.gz\t5\t" in scans


def test_run_ends_with_the_failed_subjects_and_how_to_exclude_them(bad_run):
    work, cases, run = bad_run
    bad = sorted(f"sub-{label}" for label, expected in cases.items() if expected)
    assert f"{len(bad)} subject(s) failed: {', '.join(bad)}." in run.stdout, run.stdout[-3000:]
    for subject in bad:
        assert f"  {subject}: rule convert, log out/logs/convert/{subject}.log" in run.stdout
    assert f"remove their rows ({' '.join(bad)}) from {work / 'participants.tsv'}" in run.stdout
    assert "only the group stages rerun" in run.stdout
