"""Seconds and peak memory to simulate one subject (DICOM + truth); writes JSON, asserts nothing.

Each repeat runs in a fresh process (so the cold start, loading the MNI template and atlas,
is counted, as it is for one Snakemake job) and reports its wall time, the time spent in
``simulate_subject`` alone (warm) and the process's peak resident memory.

Usage::

    python benchmarks/bench_simulate.py [--preset paper] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from neurofusion.fileio import write_json

RESULTS = Path(__file__).resolve().parent / "results" / "simulate.json"

_CHILD = """
import json, resource, sys, time
start = time.perf_counter()
from neurofusion.simulate import settings_from_config, simulate_subject
from neurofusion.simulate.anatomy import mni_model
settings = settings_from_config({"preset": sys.argv[1]})
mni_model()
ready = time.perf_counter()
simulate_subject("sub-001", "StD", settings, sys.argv[2] + "/dicom", sys.argv[2] + "/truth")
end = time.perf_counter()
print(json.dumps({
    "total_s": end - start,
    "setup_s": ready - start,
    "subject_s": end - ready,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def run_once(preset: str) -> dict:
    """Simulate sub-001 of ``preset`` in a fresh Python process; return its measurements."""
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, preset, scratch],
            check=True,
            capture_output=True,
            text=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["dicom_mb"] = (
            sum(p.stat().st_size for p in Path(scratch, "dicom").rglob("*") if p.is_file()) / 2**20
        )
        result["truth_mb"] = (
            sum(p.stat().st_size for p in Path(scratch, "truth").rglob("*") if p.is_file()) / 2**20
        )
    return result


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark and write :data:`RESULTS`; returns the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", choices=["tiny", "demo", "paper"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    runs = [run_once(args.preset) for _ in range(args.repeats)]
    summary = {
        "benchmark": "simulate one subject (DICOM + truth)",
        "preset": args.preset,
        "repeats": args.repeats,
        "median": {key: statistics.median(run[key] for run in runs) for key in runs[0]},
        "runs": runs,
        "target_s": 20.0,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "date": time.strftime("%Y-%m-%d"),
    }
    write_json(args.out, summary)
    print(json.dumps(summary["median"], indent=2))
    return summary


if __name__ == "__main__":
    main()
