"""Adam learning rate against cohort size: is ``models.lr`` right for small cohorts?

On the 16-subject demo the deep models stay at chance (:mod:`model_power`). With batches of
16 and about 11 training subjects per fold, one epoch is one optimiser step, so the default
30 epochs at ``lr`` 1e-4 (the default of all but BrainNetCNN) move the weights little. This
cross-validates the models named on several synthetic cohorts
(:func:`model_power.measure_size`: the simulator's planted effects, the demo's run length,
the workflow's folds and seeds) with each learning rate, and also with no planted effect,
where every rate must stay at chance.

Run: ``python benchmarks/learning_rate.py [--sizes 8 24] [--seeds 0 1 2 3 4 5]
[--models brainnetcnn] [--lrs 0.0001 0.001] [--effect 2.0]``, where a rate may also be a
``models.lr`` mapping in JSON (``'{"default": 0.0001, "brainnetcnn": 0.001}'``); appends to
benchmarks/results/learning_rate.json (one record per size, seed, effect, model and rate;
rerunning a combination replaces its record). Timings are not the point here: run it
alone if you want them.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import yaml
from common import RESULTS, write_result
from model_power import measure_size

REPO = Path(__file__).resolve().parents[1]
KEY = ("n_per_group", "seed", "effect_size", "model", "lr")


def summarise(records: list[dict]) -> list[dict]:
    """Mean out-of-fold accuracy and AUC over cohort seeds, per size, effect, model and rate."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        lr = json.dumps(record["lr"], sort_keys=True)  # a number or a per-model mapping
        key = (record["n_per_group"], record["effect_size"], record["model"], lr)
        groups.setdefault(key, []).append(record)
    return [
        {
            "n_per_group": n,
            "effect_size": effect,
            "model": model,
            "lr": json.loads(lr),
            "cohorts": len(rows),
            "accuracy_mean": statistics.mean(r["accuracy"] for r in rows),
            "auc_mean": statistics.mean(r["auc"] for r in rows),
        }
        for (n, effect, model, lr), rows in sorted(groups.items())
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[8])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--models", nargs="+", default=["brainnetcnn"])
    parser.add_argument("--lrs", nargs="+", type=json.loads, default=[1e-4, 1e-3])
    parser.add_argument("--effect", type=float, default=2.0)
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "config.yaml").read_text())["models"]
    previous = RESULTS / "learning_rate.json"
    records = json.loads(previous.read_text())["results"]["runs"] if previous.is_file() else []
    for n in args.sizes:
        for seed in args.seeds:
            configs = [{**config, "lr": lr} for lr in args.lrs]
            entries = measure_size(n, args.models, configs, seed, args.effect)
            for lr, entry in zip(args.lrs, entries, strict=True):
                for model in args.models:
                    record = {
                        "n_per_group": n, "seed": seed, "effect_size": args.effect,
                        "model": model, "lr": lr, "folds": entry["folds"],
                        **{k: entry[model][k] for k in ("accuracy", "auc", "cv_seconds")},
                    }  # fmt: skip
                    same = [record[k] for k in KEY]
                    records = [r for r in records if [r[k] for k in KEY] != same]
                    records.append(record)
            write_result("learning_rate", {"runs": records, "summary": summarise(records)})


if __name__ == "__main__":
    main()
