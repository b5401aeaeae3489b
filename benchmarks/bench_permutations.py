"""Speed of the linear models' label-permutation tests at the study's size.

The cohort is ``deep_models.py``'s weak one (56 StD + 70 HC, 10 folds; reused from
``--work`` when it is there). The workflow runs a model's permutations in jobs of
``models.permutations_per_job.linear`` (500): each job computes every split's label-free
inputs once (:class:`~neurofusion.training.linear.LinearInputs`), then reruns the inner
CV and the classifiers per permutation. Per model, the median of ``--repeats`` such jobs
on one thread; 1,000 permutations take two of them, side by side on 2 cores.

Run: ``python benchmarks/bench_permutations.py [--work DIR] [--repeats 3]``; writes
benchmarks/results/permutations.json.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import yaml
from common import assemble_synthetic, measure, split_synthetic, write_result
from deep_models import COHORTS

from neurofusion.training.layout import split_paths
from neurofusion.training.permutations import permutation_scores
from neurofusion.training.settings import TrainSettings
from neurofusion.training.synthetic import write_synthetic_cohort

REPO = Path(__file__).resolve().parents[1]
LINEAR = ("svm_connectivity", "logreg_tangent", "svm_gm", "svm_handcrafted")


def main(work: Path, repeats: int) -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())["models"]
    settings = TrainSettings.from_config(config, threads=1)
    per_job = config["permutations_per_job"]["linear"]
    root = work / "weak"
    if not (root / "models" / "cohort" / "cohort.tsv").is_file():
        write_synthetic_cohort(root, {"StD": 56, "HC": 70}, **COHORTS["weak"])
        assemble_synthetic(root, config["cnn_resolution_mm"])
        split_synthetic(root, config["folds"], config)
    cohort = root / "models" / "cohort"
    splits = split_paths(root / "models" / "splits", config["folds"])
    results = {"cohort": "deep_models weak", "subjects": 126, "folds": config["folds"],
               "permutations_per_job": per_job}  # fmt: skip
    for model in LINEAR:
        job = measure(
            lambda m=model: permutation_scores(m, cohort, splits, range(1, per_job + 1), settings),
            repeats,
        )
        jobs = -(-1000 // per_job)
        job["seconds_1000_one_core"] = jobs * job["seconds_median"]
        job["seconds_1000_two_cores"] = -(-jobs // 2) * job["seconds_median"]
        results[model] = job
        print(model, {k: round(v, 1) for k, v in job.items()})
    write_result("permutations", results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, help="keep (and reuse) the cohort here")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.work:
        main(args.work, args.repeats)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp), args.repeats)
