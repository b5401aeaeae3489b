"""Shared fixtures: the shared real data, and running the workflow in a scratch folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; skips when absent unless NEUROFUSION_REQUIRE_SHARED=1."""
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    if os.environ.get("NEUROFUSION_REQUIRE_SHARED") == "1":
        pytest.fail(f"NEUROFUSION_REQUIRE_SHARED=1 but {SHARED_DATA} does not exist")
    pytest.skip(f"{SHARED_DATA} not present")


def run_snakemake(
    workdir: Path, config: dict, *args: str, timeout: int = 1800
) -> subprocess.CompletedProcess:
    """Run the workflow in ``workdir`` with ``config`` merged over the shipped config.yaml.

    Returns the completed process (stdout and stderr merged into ``stdout``); the caller
    checks the return code, since several tests expect failures.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    configfile = workdir / "test-config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    cmd = [
        shutil.which("snakemake") or "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        *args,
        f"--configfile={configfile}",
    ]
    return subprocess.run(
        cmd,
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


#: The simulated cohort the preprocessing tests share: 1 patient + 1 control, tiny preset.
TINY_COHORT = {"simulate": {"preset": "tiny", "n_per_group": 1, "seed": 7}}


@pytest.fixture(scope="session")
def tiny_preprocessed(tmp_path_factory) -> Path:
    """Workflow folder after ``snakemake preprocess`` on :data:`TINY_COHORT`."""
    work = tmp_path_factory.mktemp("tiny_preprocessed")
    run = run_snakemake(work, TINY_COHORT, "--cores", "2", "preprocess")
    assert run.returncode == 0, run.stdout[-5000:]
    return work
