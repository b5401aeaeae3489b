"""Shared fixtures: the shared real data, and running the workflow in a scratch folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
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


def planned_jobs(dry_run_output: str) -> set[tuple[str, str | None]]:
    """The ``(rule, subject)`` pairs a ``snakemake -n`` run plans (subject None: group jobs)."""
    jobs = set()
    for block in re.split(r"^(?=(?:local)?rule \w+:$)", dry_run_output, flags=re.MULTILINE):
        rule = re.match(r"(?:local)?rule (\w+):$", block, re.MULTILINE)
        if rule:
            subject = re.search(r"^\s+wildcards: .*\bsubject=(\w+)", block, re.MULTILINE)
            jobs.add((rule.group(1), subject.group(1) if subject else None))
    return jobs


def assert_outputs_equal(work: Path, reference: Path, folders: tuple[str, ...]) -> None:
    """Every file under ``reference/results/<folder>`` exists in ``work`` with equal content.

    NIfTI images: equal affines and data arrays (the gzip header holds a time stamp);
    provenance records: equal apart from ``created`` and ``job``, so the same parameters
    (threads included) and input checksums; figures (PNG) are not compared, being drawn
    from the compared data; any other file: equal bytes.
    """
    compared = 0
    for folder in folders:
        root = reference / "results" / folder
        for theirs in sorted(p for p in root.rglob("*") if p.is_file()):
            ours = work / "results" / folder / theirs.relative_to(root)
            assert ours.exists(), ours
            if ours.name.endswith((".nii", ".nii.gz")):
                a, b = nib.load(ours), nib.load(theirs)
                np.testing.assert_array_equal(a.affine, b.affine, err_msg=str(ours))
                np.testing.assert_array_equal(
                    np.asarray(a.dataobj), np.asarray(b.dataobj), err_msg=str(ours)
                )
            elif ours.name.endswith("_provenance.json"):
                a, b = (json.loads(p.read_text()) for p in (ours, theirs))
                for record in (a, b):
                    record.pop("created")
                    record.pop("job", None)
                assert a == b, ours
            elif ours.suffix != ".png":
                assert ours.read_bytes() == theirs.read_bytes(), ours
            compared += 1
    assert compared, f"nothing to compare under {reference}"
