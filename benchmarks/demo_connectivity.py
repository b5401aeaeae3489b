"""Issue 5's acceptance on the demo cohort: recovered connectivity against the truth.

Runs ``snakemake connectivity`` with the shipped config (the demo: 8 patients + 8
controls, simulated from DICOM on) in a work folder, then scores every subject's
Fisher-z matrix against its true connectivity and tests the planted default-mode <->
ventral-striatum group difference in the outputs
(:mod:`neurofusion.connectivity.accuracy`). Too slow for the test suite (about 23 minutes on
2 cores); the tests score the tiny cohort the same way.

Run: ``python benchmarks/demo_connectivity.py WORK_DIR [CORES]`` (writes
benchmarks/results/demo_connectivity.json; rerunning reuses WORK_DIR's finished jobs).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from common import write_result

from neurofusion.connectivity.accuracy import planted_edge_tests, truth_correlation
from neurofusion.connectivity.outputs import connectivity_outputs
from neurofusion.simulate.settings import PATIENT_GROUP

REPO = Path(__file__).resolve().parents[1]


def main(work: str, cores: str = "2") -> None:
    work_dir = Path(work)
    work_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    subprocess.run(
        [shutil.which("snakemake") or "snakemake", "-s", str(REPO / "Snakefile"),
         "-d", str(work_dir), "--cores", cores, "connectivity"],
        check=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    results = work_dir / "results"
    participants = pd.read_csv(results / "qc" / "group_qc.tsv", sep="\t")  # id, group
    labels = participants["participant_id"].str.removeprefix("sub-").tolist()
    outputs = {label: connectivity_outputs(results / "derivatives", label) for label in labels}
    scores = {
        label: truth_correlation(
            out["fisherz"],
            out["coverage"],
            results / "simulated" / "truth" / f"sub-{label}" / "connectivity.tsv",
        )
        for label, out in outputs.items()
    }
    mean_r = sum(scores.values()) / len(scores)
    jobs = [pd.read_csv(tsv, sep="\t")["s"].iloc[0] for tsv in results.glob("benchmarks/**/*.tsv")]
    record = {
        "subjects": len(labels),
        # this invocation only (a rerun that finds everything done takes seconds)
        "wall_seconds_this_invocation": round(seconds, 1),
        "jobs": len(jobs),
        "job_seconds_total": round(float(sum(jobs)), 1),
        "truth_r_per_subject": scores,
        "truth_r_mean": mean_r,
        "planted_effect": planted_edge_tests(
            [out["fisherz"] for out in outputs.values()],
            participants["group"].tolist(),
            PATIENT_GROUP,
        ),
    }
    print(write_result("demo_connectivity", record))


if __name__ == "__main__":
    main(*sys.argv[1:])
