"""The deep models against the linear baselines of the same pipeline, at the study's size.

Synthetic cohorts of 56 StD + 70 HC (:mod:`neurofusion.training.synthetic`: the
simulator's planted effects, already in MNI space), assembled at the default 4 mm CNN grid
and split into the default 10 folds; every model is trained on every fold as its workflow
job trains it (branches first, reused by the fusions), with the default ``models:``
settings of config.yaml and one thread, as the workflow runs its jobs (``models.threads``:
two jobs side by side on 2 cores, so the whole CV takes about half ``cv_minutes``, the
sum of its jobs' times).

* ``weak``: a weak planted effect (grey matter and connectivity d = 0.8) in 120-volume
  runs. It behaves as the real cohorts where the deep models were at chance: with the
  previous training recipe BrainNetCNN started at a loss of 4.6 to 7.6 and kept epochs 1
  to 7, and the 3D CNN never fitted its training set (``previous_recipe``, measured on the
  same cohort and folds).
* ``two_signal``: each modality carries its own signal (grey matter d = 2.0,
  connectivity d = 1.5; independent draws), so that fusion can gain over either branch:
  ``fusion`` and ``late_fusion`` against the better single-modality network, paired on
  the same subjects (exact McNemar test of the predictions; class-stratified bootstrap of
  the AUC difference).

Per model: out-of-fold balanced accuracy, accuracy and AUC; seconds per fold and the whole
CV's minutes; for the deep ones the loss at initialisation, the kept epoch and the
training accuracy there (:func:`~neurofusion.training.history.training_summary`).

Run: ``python benchmarks/deep_models.py [weak] [two_signal] [--models M ...] [--work DIR]``
(``--work``: keep each cohort in ``DIR/<cohort>`` and reuse it, with the fold outputs of
the models not named, in a later run); writes
benchmarks/results/deep_models_<cohort>.json (models not run keep their entries).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from common import RESULTS, assemble_synthetic, split_synthetic, train_fold, write_result
from sklearn.metrics import balanced_accuracy_score

from neurofusion.evaluation.metrics import auc
from neurofusion.evaluation.stats import bootstrap_auc_difference, mcnemar_exact
from neurofusion.training.layout import fold_outputs, split_paths
from neurofusion.training.settings import TrainSettings
from neurofusion.training.synthetic import write_synthetic_cohort

REPO = Path(__file__).resolve().parents[1]
THREADS = 1
#: The cohorts: planted effects (Cohen's d), run length, cohort seed.
COHORTS = {
    "weak": {"effect_size": 0.8, "connectivity_effect_size": 0.8, "n_volumes": 120, "seed": 11},
    "two_signal": {"effect_size": 2.0, "connectivity_effect_size": 1.5, "n_volumes": 120,
                   "seed": 12},
}  # fmt: skip
#: Branches first: the fusions reuse the same fold's outputs, as the workflow's jobs do.
ORDER = ["cnn3d", "brainnetcnn", "fusion", "late_fusion", "early_fusion", "svm_connectivity",
         "logreg_tangent", "svm_gm", "svm_handcrafted"]  # fmt: skip


def _scores(predictions: pd.DataFrame) -> dict:
    truth, prob = predictions.label.to_numpy(), predictions.probability.to_numpy()
    guess = (prob >= 0.5).astype(int)
    return {
        "balanced_accuracy": float(balanced_accuracy_score(truth, guess)),
        "accuracy": float((truth == guess).mean()),
        "auc": auc(truth, prob),
    }


def _cross_validate(model: str, cohort: Path, splits: list[Path], settings) -> dict:
    """Every fold of ``model``; scores, times and the deep models' training summaries."""
    seconds, frames, summaries = [], [], []
    for k in range(len(splits)):
        start = time.perf_counter()
        out = train_fold(model, cohort, splits, k, settings)
        seconds.append(time.perf_counter() - start)
        frames.append(pd.read_csv(out["predictions"], sep="\t"))
        training = json.loads(out["provenance"].read_text()).get("training")
        if training:
            summaries.append(training)
    entry = {**_scores(pd.concat(frames)), "seconds_per_fold_median": float(np.median(seconds)),
             "cv_minutes": sum(seconds) / 60}  # fmt: skip
    if summaries:
        entry |= {
            "initial_loss": [s["initial_loss"] for s in summaries],
            "kept_epoch": [s["kept_epoch"] for s in summaries],
            "train_accuracy_at_kept": [s["train_accuracy"] for s in summaries],
        }
    return entry


def _predictions(models_root: Path, folds: int, model: str) -> pd.DataFrame:
    """Out-of-fold predictions of ``model``, by subject."""
    frames = [pd.read_csv(fold_outputs(models_root, model, k)["predictions"], sep="\t")
              for k in range(folds)]  # fmt: skip
    return pd.concat(frames).sort_values("subject")


def _paired(models_root: Path, folds: int, model: str, other: str) -> dict:
    """``model`` against ``other`` on the same subjects: McNemar and the AUC bootstrap."""
    a, b = _predictions(models_root, folds, model), _predictions(models_root, folds, other)
    labels = a.label.to_numpy()
    return {
        "mcnemar": mcnemar_exact(labels, a.prediction.to_numpy(), b.prediction.to_numpy()),
        "auc_difference": bootstrap_auc_difference(
            labels, a.probability.to_numpy(), b.probability.to_numpy()
        ),
    }


def run_cohort(
    name: str, models: list[str], config: dict, save=None, work: Path | None = None
) -> dict:
    """Every model of ``models`` on cohort ``name``; ``save(results)`` after each. With
    ``work``, the cohort and the fold outputs stay in that folder, and a cohort already
    there is reused (the models named are trained again)."""
    if work is None:
        with tempfile.TemporaryDirectory() as tmp:
            return run_cohort(name, models, config, save, Path(tmp))
    settings = TrainSettings.from_config(config, threads=THREADS)
    results = {"cohort": {"n_per_group": {"StD": 56, "HC": 70}, **COHORTS[name]}}
    root = Path(work)
    cohort = root / "models" / "cohort"
    if not (cohort / "cohort.tsv").is_file():
        write_synthetic_cohort(root, {"StD": 56, "HC": 70}, **COHORTS[name])
        assemble_synthetic(root, config["cnn_resolution_mm"])
        split_synthetic(root, config["folds"], config)
    splits = split_paths(root / "models" / "splits", config["folds"])
    for model in [m for m in ORDER if m in models]:
        results[model] = _cross_validate(model, cohort, splits, settings)
        print(name, model, {k: v for k, v in results[model].items() if not isinstance(v, list)})
        if save:
            save(results)
    if name == "two_signal" and all((root / "models" / m).is_dir() for m in ORDER[:2]):
        scores = {m: _scores(_predictions(root / "models", config["folds"], m)) for m in ORDER[:2]}
        better = max(ORDER[:2], key=lambda m: scores[m]["accuracy"])
        results["better_single"] = better
        for fused in ("fusion", "late_fusion"):
            if (root / "models" / fused).is_dir():
                results[f"{fused}_vs_{better}"] = _paired(
                    root / "models", config["folds"], fused, better
                )
    return results


def main(cohorts: list[str], models: list[str], work: Path | None = None) -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())["models"]
    settings = TrainSettings.from_config(config, threads=THREADS).as_dict()
    for name in cohorts:
        path = RESULTS / f"deep_models_{name}.json"
        kept = json.loads(path.read_text())["results"] if path.is_file() else {}

        def save(partial: dict, kept=kept, name=name) -> None:
            write_result(f"deep_models_{name}", {**kept, **partial, "settings": settings})

        save(run_cohort(name, models, config, save, work / name if work else None))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("cohorts", nargs="*", default=list(COHORTS), choices=list(COHORTS))
    parser.add_argument("--models", nargs="+", default=ORDER, choices=ORDER)
    parser.add_argument("--work", type=Path, help="keep (and reuse) the cohorts here")
    args = parser.parse_args()
    main(args.cohorts, args.models, args.work)
