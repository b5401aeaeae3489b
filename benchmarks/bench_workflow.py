"""Wall time of the tiny cohort's preprocessing with 1 and with 2 cores, and its jobs.

Runs ``snakemake preprocess`` on the simulated tiny cohort (2 subjects by default) from
scratch once per core count, and records the wall time of each run and Snakemake's
per-job benchmark table (``results/benchmarks/<stage>/sub-<id>.tsv``: seconds, peak
resident memory). With 2 cores the two subjects' 1-thread jobs (simulate, convert) run
side by side; the anat and func jobs ask for 2 threads each, so with 2 cores they take the
whole machine in turn, and with 1 core they run on 1 thread.

Run: ``python benchmarks/bench_workflow.py [n_per_group]`` (writes
benchmarks/results/workflow.json).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from common import write_result

REPO = Path(__file__).resolve().parents[1]


def run(cores: int, n_per_group: int) -> dict:
    """One run from scratch; its wall time and the per-job table."""
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        config = work / "config.yaml"
        config.write_text(
            yaml.safe_dump({"simulate": {"preset": "tiny", "n_per_group": n_per_group}})
        )
        start = time.perf_counter()
        subprocess.run(
            [shutil.which("snakemake") or "snakemake", "-s", str(REPO / "Snakefile"),
             "-d", str(work), "--cores", str(cores), "preprocess", f"--configfile={config}"],
            check=True, capture_output=True,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        # Snakemake writes "-" where a job ended before memory could be sampled.
        jobs = {
            f"{tsv.parent.name}/{tsv.stem}": {
                key: None if pd.isna(value) else round(float(value), 2)
                for key, value in pd.to_numeric(
                    pd.read_csv(tsv, sep="\t").iloc[0][["s", "max_rss", "cpu_time"]],
                    errors="coerce",
                ).items()
            }
            for tsv in sorted((work / "results" / "benchmarks").rglob("*.tsv"))
        }
    return {"wall_seconds": round(seconds, 1), "jobs": jobs}


def main(n_per_group: int = 1) -> None:
    results = {f"cores_{cores}": run(cores, n_per_group) for cores in (1, 2)}
    results["subjects"] = 2 * n_per_group
    print(write_result("workflow", results))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
