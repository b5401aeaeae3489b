"""Only what changed reruns, and a killed run resumes to the same outputs.

Every test works on a copy of the tiny cohort's preprocessed run (``tiny_preprocessed``),
Snakemake's records in ``.snakemake`` included, so the shared run stays untouched. The
copies leave out nipype's working folders, which only a rerun of a job would read.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO, TINY_COHORT, assert_outputs_equal, planned_jobs, run_snakemake

from neurofusion.bids.layout import raw_image_path
from neurofusion.preprocessing.func_outputs import func_outputs

pytestmark = pytest.mark.workflow

SUBJECTS = {"001", "002"}


def _copy(run: Path, to: Path) -> Path:
    """Copy a workflow folder without nipype's working folders (results/work)."""
    shutil.copytree(
        run, to, ignore=lambda folder, _: ["work"] if Path(folder) == run / "results" else []
    )
    return to


@pytest.fixture(scope="module")
def copy(tiny_preprocessed, tmp_path_factory) -> Path:
    """One copy for the dry runs, which change only the configuration."""
    return _copy(tiny_preprocessed, tmp_path_factory.mktemp("rerun") / "work")


def _plan(work: Path, config: dict = TINY_COHORT) -> set[tuple[str, str | None]]:
    run = run_snakemake(work, config, "-n", "preprocess")
    assert run.returncode == 0, run.stdout[-3000:]
    return planned_jobs(run.stdout)


def test_nothing_changed_plans_nothing(copy):
    assert _plan(copy) == set()


def test_new_input_for_one_subject_plans_only_its_jobs(tiny_preprocessed, tmp_path):
    work = _copy(tiny_preprocessed, tmp_path / "work")
    raw = work / "results" / "rawdata"
    for role in ("T1w", "bold"):  # a re-exported scan: same subject, newer files
        image = raw_image_path(raw, "001", role)
        image.write_bytes(image.read_bytes())
    assert _plan(work) == {("anat", "001"), ("func", "001"), ("preprocess", None)}


def test_adding_a_subject_plans_only_its_chain(copy):
    bigger = {"simulate": {**TINY_COHORT["simulate"], "n_per_group": {"StD": 2, "HC": 1}}}
    chain = {"simulate_subject", "convert", "anat", "func"}
    assert _plan(copy, bigger) == {(rule, "003") for rule in chain} | {("preprocess", None)}


def test_changing_a_preprocessing_parameter_plans_every_affected_job(copy):
    smoother = {**TINY_COHORT, "preprocessing": {"func": {"denoise": {"fwhm_mm": 6.0}}}}
    assert _plan(copy, smoother) == {("func", s) for s in SUBJECTS} | {("preprocess", None)}


def test_permutation_tests_run_as_jobs_of_ranges(copy):
    """Each model's label permutations are split into jobs of ``permutations_per_job``."""
    models = {
        "enabled": ["brainnetcnn", "svm_connectivity"],
        "permutations": {"linear": 5, "deep": 3},
        "permutations_per_job": {"linear": 5, "deep": 2},
    }
    run = run_snakemake(copy, {**TINY_COHORT, "models": models}, "-n", "evaluation")
    assert run.returncode == 0, run.stdout[-3000:]
    planned = set(re.findall(r"models/(\w+)/permutations/(\d+-\d+)\.tsv", run.stdout))
    assert planned == {("brainnetcnn", "1-2"), ("brainnetcnn", "3-3"), ("svm_connectivity", "1-5")}


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_outputs(tiny_preprocessed, tmp_path):
    """kill -9 Snakemake and its jobs while the functional jobs run, as a crashed login
    node or an out-of-memory killer would, then unlock and run again."""
    work = _copy(tiny_preprocessed, tmp_path / "work")
    deriv = work / "results" / "derivatives"
    for subject in SUBJECTS:
        for path in func_outputs(deriv, subject).values():
            path.unlink()
    config = work / "test-config.yaml"
    command = [
        shutil.which("snakemake") or "snakemake",
        *("-s", str(REPO / "Snakefile"), "-d", str(work)),
        *("--profile", str(REPO / "profiles" / "local"), "--cores", "2", "preprocess"),
        f"--configfile={config}",
    ]
    with open(tmp_path / "killed.log", "w") as log:
        run = subprocess.Popen(command, cwd=work, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)  # fmt: skip
        nipype = work / "results" / "work"
        deadline = time.monotonic() + 300
        while not any(nipype.glob("func_sub-*/*/*/*")) and run.poll() is None:
            assert time.monotonic() < deadline, "the functional jobs did not start"
            time.sleep(0.5)
        time.sleep(3)  # inside the first job's nipype workflow
        assert run.poll() is None, "the run ended before it could be killed"
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    missing = [p for s in SUBJECTS for p in func_outputs(deriv, s).values() if not p.exists()]
    assert missing, "the kill came too late: every output was already written"

    unlock = run_snakemake(work, TINY_COHORT, "--unlock")
    assert unlock.returncode == 0, unlock.stdout[-3000:]
    rerun = run_snakemake(
        work, TINY_COHORT, "--profile", str(REPO / "profiles" / "local"), "--cores", "2",
        "preprocess",
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stdout[-5000:]
    assert_outputs_equal(work, tiny_preprocessed, ("derivatives",))
