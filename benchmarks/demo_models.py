"""Issues 6 and 8 on the demo cohort: out-of-fold metrics of every model, and retrieval MAP.

Runs ``snakemake evaluation retrieval`` with the shipped config in a work folder (the
connectivity stage's outputs there are reused; see ``demo_connectivity.py``), optionally
with an overlay config file (``--configfile`` semantics, e.g. to set
``models.permutations`` to 0: the default 20 deep permutations take hours on 2 cores), then
collects the evaluation's metrics and permutation p values, the retrieval summary and
the per-job seconds of the models stage.

Run: ``python benchmarks/demo_models.py WORK_DIR [CORES] [OVERLAY.yaml]`` (writes
benchmarks/results/demo_models.json).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from common import write_result

REPO = Path(__file__).resolve().parents[1]


def collect(results: Path) -> dict:
    """The evaluation's and the retrieval's headline numbers from ``results``."""
    metrics = pd.read_csv(results / "evaluation" / "metrics.tsv", sep="\t")
    wanted = metrics[metrics.metric.isin(["accuracy", "balanced_accuracy", "auc"])]
    table = {
        model: {row.metric: [row.value, row.low, row.high] for row in rows.itertuples()}
        for model, rows in wanted.groupby("model", sort=False)
    }
    permutations = pd.read_csv(results / "evaluation" / "permutations.tsv", sep="\t")
    summary = pd.read_csv(results / "retrieval" / "summary.tsv", sep="\t", dtype={"fold": str})
    overall = summary[(summary.fold == "all") & (summary.group == "all")]
    jobs = {
        tsv.stem: float(pd.read_csv(tsv, sep="\t")["s"].iloc[0])
        for tsv in (results / "benchmarks" / "models").glob("*.tsv")
    }
    return {
        "subjects": int(metrics.loc[metrics.metric == "accuracy", "n"].iloc[0]),
        "metrics_value_low_high": table,
        "permutations": permutations.to_dict(orient="records"),
        "retrieval_overall": overall.drop(columns=["fold", "group"]).to_dict(orient="records"),
        "retrieval_comparisons": pd.read_csv(
            results / "retrieval" / "comparisons.tsv", sep="\t"
        ).to_dict(orient="records"),
        "model_job_seconds_total": round(sum(jobs.values()), 1),
        "model_jobs": len(jobs),
    }


def main(work: str, cores: str = "2", overlay: str | None = None) -> None:
    work_dir = Path(work)
    command = [shutil.which("snakemake") or "snakemake", "-s", str(REPO / "Snakefile"),
               "-d", str(work_dir), "--cores", cores, "evaluation", "retrieval"]  # fmt: skip
    if overlay:
        command += ["--configfile", str(REPO / "config.yaml"), str(Path(overlay).resolve())]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    record = {
        "wall_seconds_this_invocation": round(time.perf_counter() - start, 1),
        "overlay": Path(overlay).read_text() if overlay else None,
        **collect(work_dir / "results"),
    }
    print(write_result("demo_models", record))


if __name__ == "__main__":
    main(*sys.argv[1:])
