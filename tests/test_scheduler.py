"""The installed Snakemake runs no more jobs at once than ``--cores`` allows.

Snakemake 9.10 to 9.16 do not count a job started as the only ready one against the
pool, yet give its cores back when it ends (snakemake#3913), so after a single job
(the demo's ``cohort``, for example) more single-thread jobs run than there are cores.
pyproject.toml pins a release without the bug; this fails if an install brings it back.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SNAKEFILE = """
rule all:
    input:
        expand("done/{n}", n=range(6)),


rule first:
    output:
        "common",
    shell:
        "touch {output}"


rule job:
    input:
        "common",
    output:
        "done/{n}",
    shell:
        "date +%s.%N > {output}.start; sleep 1.5; date +%s.%N > {output}"
"""


def _most_at_once(folder: Path) -> int:
    """Largest number of jobs whose [start, end) intervals overlap."""
    spans = [
        (float(path.with_suffix(".start").read_text()), float(path.read_text()))
        for path in folder.glob("[0-9]")
    ]
    assert len(spans) == 6
    return max(sum(s <= start < e for s, e in spans) for start, _ in spans)


def test_snakemake_honours_cores(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    run = subprocess.run(
        [shutil.which("snakemake") or "snakemake", "--cores", "2", "--quiet"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert _most_at_once(tmp_path / "done") == 2
