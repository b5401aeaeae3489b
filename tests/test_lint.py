"""The code base stays clean: ruff, snakefmt and Snakemake's own linter."""

from __future__ import annotations

import subprocess

import pytest
from conftest import REPO


@pytest.mark.parametrize(
    "cmd",
    [
        ["ruff", "check", "."],
        ["ruff", "format", "--check", "."],
        ["snakefmt", "--check", "."],
        ["snakemake", "--lint"],
    ],
    ids=["ruff-check", "ruff-format", "snakefmt", "snakemake-lint"],
)
def test_linter_is_clean(cmd):
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "Lints for" not in output, output[-4000:]
