"""The workflow on a real one-node Slurm cluster through ``--profile profiles/slurm``.

The daemons (munged, slurmctld, slurmd from Debian's slurm-wlm and munge) are started by
:mod:`slurm_cluster` for this module and stopped after it. Without them, or without root,
the tests skip, unless NEUROFUSION_REQUIRE_SLURM=1 (CI) makes that an error.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from conftest import REPO, TINY_COHORT, assert_outputs_equal, run_snakemake
from slurm_cluster import SlurmCluster, available

pytestmark = [pytest.mark.slurm, pytest.mark.workflow, pytest.mark.slow]

PROFILE = str(REPO / "profiles" / "slurm")
#: First status poll after 5 s instead of the plugin's 40 (still within MinJobAge / 3, so
#: the plugin keeps reading job states with squeue).
FAST_POLL = ("--slurm-init-seconds-before-status-checks", "5")
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running one-node cluster; SLURM_CONF points Slurm's clients at it."""
    if not available() or os.geteuid() != 0:
        reason = "Slurm (slurm-wlm, munge) is not installed or this is not root"
        if os.environ.get("NEUROFUSION_REQUIRE_SLURM") == "1":
            pytest.fail(f"NEUROFUSION_REQUIRE_SLURM=1 but {reason}")
        pytest.skip(reason)
    slurm = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    slurm.start()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in slurm.env.items():
            patch.setenv(key, value)
        yield slurm
    slurm.stop()


def _states(cluster: SlurmCluster) -> dict[str, tuple[str, str]]:
    """Slurm's record of every job it still holds: {job id: (state, memory requested)}."""
    out = cluster.client("squeue", "--states=all", "--noheader", "--format=%i|%T|%m").stdout
    return {i: (state, mem) for i, state, mem in (line.split("|") for line in out.split())}


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    """The tiny cohort preprocessed with the Slurm profile, from DICOM simulation on."""
    work = tmp_path_factory.mktemp("slurm_run")
    run = run_snakemake(work, TINY_COHORT, "--profile", PROFILE, *FAST_POLL, "preprocess")
    assert run.returncode == 0, run.stdout[-5000:] + cluster.logs()
    return work, dict(SUBMITTED.findall(run.stdout))


def test_every_job_ran_under_slurm(cluster, slurm_run):
    work, submitted = slurm_run
    # simulate_subject, convert, anat, func for 2 subjects; "preprocess" only collects.
    assert len(submitted) == 8, submitted
    states = _states(cluster)
    assert {states[job][0] for job in submitted.values()} == {"COMPLETED"}
    logs = sorted((work / "results" / "logs").rglob("sub-*.log"))
    assert len(logs) == 8
    for log in logs:
        job = re.search(r"Slurm job (\d+) on ", log.read_text())
        assert job and job.group(1) in submitted.values(), log
    for record in (work / "results").rglob("*_provenance.json"):
        assert json.loads(record.read_text())["job"]["job_id"] in submitted.values(), record


def test_outputs_equal_the_local_run(slurm_run, tiny_preprocessed):
    """Bit for bit: both runs use the same threads per job, and the pipeline is deterministic.

    Every file of the Slurm run is compared with the local run's, which may hold more
    (later stages run in the shared local folder by other test modules).
    """
    work, _ = slurm_run
    assert_outputs_equal(tiny_preprocessed, work, ("rawdata", "derivatives"))


def test_job_killed_for_memory_is_retried_with_more(cluster, tmp_path):
    """Slurm kills the first attempt (100 MB, less than Python itself needs); the retry
    asks for 20 times more and succeeds. The expression stands in for the rules' own
    ``mem_mb(first) = first x attempt``, whose first attempts are meant to fit."""
    run = run_snakemake(
        tmp_path,
        TINY_COHORT,
        "results/simulated/participants.tsv",
        "--profile",
        PROFILE,
        *FAST_POLL,
        "--set-resources",
        "simulate_participants:mem_mb=100*20**(attempt-1)",
    )
    assert run.returncode == 0, run.stdout[-5000:]
    first, second = (slurm_id for _, slurm_id in SUBMITTED.findall(run.stdout))
    states = _states(cluster)
    assert states[first] == ("FAILED", "100M")
    assert states[second] == ("COMPLETED", "2000M")
    slurm_logs = tmp_path / ".snakemake" / "slurm_logs" / "rule_simulate_participants"
    (killed,) = slurm_logs.rglob(f"{first}.log")
    assert "exceeded memory limit" in killed.read_text()
    assert (tmp_path / "results" / "simulated" / "participants.tsv").exists()
