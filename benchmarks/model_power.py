"""How many subjects the deep models need: out-of-fold accuracy against cohort size.

The demo cohort (issue 3: 16 subjects, sized for a short run) is also where the deep
models must beat chance (issue 6). This measures what cohort size that takes. For each
size, a synthetic cohort (:mod:`neurofusion.training.synthetic`: the simulator's planted
effects, already in MNI space, so no preprocessing error; an optimistic bound for the
workflow's own outputs) with the demo's run length is assembled at the default 4 mm CNN
grid and split as the workflow splits it (10 folds, or one per subject of the smaller
group when that is fewer); every model named is cross-validated with the default
``models:`` settings of config.yaml (``models.lr`` included, as the ``settings`` of
model_power.json record) and 2 threads, through
:func:`~neurofusion.training.run.cross_validated_scores` (the fold jobs' seeds, so the
numbers are the workflow's). One cohort per size: the accuracies carry the sampling
noise of that many subjects (see the Wilson interval written beside each).

With ``--effect-size D`` the cohorts carry a planted effect of D (grey matter and
connectivity; the demo's default is 2): how large an effect the 16-subject demo would need.

Run: ``python benchmarks/model_power.py [N_PER_GROUP ...] [--models M ...]
[--effect-size D]``; writes benchmarks/results/model_power.json, one ``by_n_per_group``
table per effect size under ``by_effect_size`` (sizes not run keep their previous entries).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import yaml
from common import RESULTS, assemble_synthetic, split_synthetic, write_result

from neurofusion.evaluation.metrics import wilson_interval
from neurofusion.simulate.settings import PRESETS
from neurofusion.training.cohort import Cohort
from neurofusion.training.run import cross_validated_scores
from neurofusion.training.settings import TrainSettings
from neurofusion.training.synthetic import write_synthetic_cohort

REPO = Path(__file__).resolve().parents[1]
THREADS = 2
#: The demo preset's BOLD volumes after the dummies.
DEMO_VOLUMES = PRESETS["demo"]["n_volumes"]


def measure_size(
    n_per_group: int,
    models: list[str],
    configs: list[dict],
    seed: int = 0,
    effect_size: float = 2.0,
) -> list[dict]:
    """Cross-validated scores of ``models`` on one synthetic cohort of ``n_per_group`` x 2
    (cohort ``seed``, planted ``effect_size``), trained with each ``models:`` block of
    ``configs`` in turn (they share the folds of the first); one entry per config."""
    folds = min(configs[0]["folds"], n_per_group)
    entries = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_synthetic_cohort(
            root, {"StD": n_per_group, "HC": n_per_group}, effect_size=effect_size,
            n_volumes=DEMO_VOLUMES, seed=seed,
        )  # fmt: skip
        cohort = Cohort(assemble_synthetic(root, configs[0]["cnn_resolution_mm"]))
        splits = split_synthetic(root, folds, configs[0])
        for config in configs:
            settings = TrainSettings.from_config(config, threads=THREADS)
            entry: dict = {"subjects": 2 * n_per_group, "folds": folds}
            for model in models:
                start = time.perf_counter()
                scores = cross_validated_scores(model, cohort, splits, settings)
                right = round(scores["accuracy"] * len(cohort.ids))
                low, high = wilson_interval(right, len(cohort.ids))
                entry[model] = {
                    **scores,
                    "accuracy_95": [low, high],
                    "cv_seconds": time.perf_counter() - start,
                }
                print(n_per_group, model, entry[model], flush=True)
            entries.append(entry)
    return entries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[8, 16, 24])
    parser.add_argument("--models", nargs="+", default=["brainnetcnn", "cnn3d", "fusion"])
    parser.add_argument("--effect-size", type=float, default=2.0)
    args = parser.parse_args()
    config = yaml.safe_load((REPO / "config.yaml").read_text())["models"]
    previous = RESULTS / "model_power.json"
    results = json.loads(previous.read_text())["results"] if previous.is_file() else {}
    results["settings"] = TrainSettings.from_config(config, threads=THREADS).as_dict()
    results["n_volumes"] = DEMO_VOLUMES
    effect = results.setdefault("by_effect_size", {}).setdefault(str(args.effect_size), {})
    by_size = effect.setdefault("by_n_per_group", {})
    for n in args.sizes:
        by_size[str(n)] = measure_size(n, args.models, [config], effect_size=args.effect_size)[0]
        write_result("model_power", results)


if __name__ == "__main__":
    main()
