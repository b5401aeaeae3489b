"""Training time of every model for one cross-validation fold on paper-sized inputs.

A synthetic cohort the size of the study (56 StD + 70 HC; MNI T1 and GM at 2 mm, AAL-116
matrices from 240-volume runs; :mod:`neurofusion.training.synthetic`) is assembled at the
default 4 mm CNN grid and split into the default 10 folds; each model is trained on
fold 0 with the default ``models:`` settings of config.yaml and 2 threads (the
``settings`` in models.json say which: ``lr`` 0.0001, ``model_lr`` 0.001 for BrainNetCNN).
Deep models are timed once (a fold takes minutes); linear ones ``repeats`` times (median).

The whole cross-validation is extrapolated as ``folds x seconds per fold``, and the
permutation tests as ``permutations x folds x seconds per fold`` (config defaults).

With ``--all-folds`` the other K - 1 folds are trained too (once each, every model after
the branches it reuses, as the workflow's jobs run them): ``cv_minutes_measured`` is then
the whole cross-validation timed rather than extrapolated, with the out-of-fold accuracy
and AUC over all folds (``oof_accuracy``, ``oof_auc``).

Run: ``python benchmarks/bench_models.py [model ...] [--all-folds]``; writes
benchmarks/results/models.json (the entries of models not named are kept from the previous
run, so the slow deep models and the linear ones can be measured separately).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from common import (
    RESULTS,
    assemble_synthetic,
    measure,
    split_synthetic,
    train_fold,
    write_result,
)

from neurofusion.evaluation.metrics import auc
from neurofusion.training.layout import fold_outputs
from neurofusion.training.registry import MODELS
from neurofusion.training.settings import TrainSettings
from neurofusion.training.synthetic import write_synthetic_cohort

REPO = Path(__file__).resolve().parents[1]
THREADS = 2
LINEAR_REPEATS = 3


def _accuracy(predictions: pd.DataFrame) -> float:
    """Fraction of ``predictions.tsv`` rows whose prediction is the label."""
    return float((predictions.label == predictions.prediction).mean())


def _other_folds(
    model: str, cohort: Path, splits: list[Path], settings: TrainSettings, fold0_s: float
) -> dict:
    """Train ``model`` on folds 1..K-1 once each (fold 0 is done, in ``fold0_s`` seconds);
    the measured minutes of the whole cross-validation and the out-of-fold accuracy and
    AUC over all K folds."""
    seconds = fold0_s
    for k in range(1, len(splits)):
        start = time.perf_counter()
        train_fold(model, cohort, splits, k, settings)
        seconds += time.perf_counter() - start
    predictions = pd.concat(
        pd.read_csv(fold_outputs(cohort.parent, model, k)["predictions"], sep="\t")
        for k in range(len(splits))
    )
    return {
        "cv_minutes_measured": seconds / 60,
        "oof_accuracy": _accuracy(predictions),
        "oof_auc": auc(predictions.label.to_numpy(), predictions.probability.to_numpy()),
    }


def main(models: list[str], all_folds: bool = False) -> None:
    config = yaml.safe_load((REPO / "config.yaml").read_text())["models"]
    settings = TrainSettings.from_config(config, threads=THREADS)
    folds = config["folds"]
    previous = RESULTS / "models.json"
    results: dict = json.loads(previous.read_text())["results"] if previous.is_file() else {}
    results |= {"settings": settings.as_dict(), "folds": folds, "threads": THREADS}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        write_synthetic_cohort(root, {"StD": 56, "HC": 70}, effect_size=2.0, n_volumes=240)
        results["synthetic_cohort_s"] = time.perf_counter() - start
        cohort = root / "models" / "cohort"
        results["assemble_cohort"] = measure(
            lambda: assemble_synthetic(root, config["cnn_resolution_mm"]), repeats=1
        )
        splits = split_synthetic(root, folds, config)
        for model in models:
            spec = MODELS[model]
            out = fold_outputs(root / "models", model, 0)
            timing = measure(
                lambda model=model: train_fold(model, cohort, splits, 0, settings),
                repeats=1 if spec.deep or spec.branches else LINEAR_REPEATS,
            )
            per_fold = timing["seconds_median"]
            kind = "deep" if spec.deep or spec.branches else "linear"
            n_perm = config["permutations"][kind]
            entry = {**timing, "cv_minutes": folds * per_fold / 60,
                     "permutations": n_perm,
                     "permutation_hours": n_perm * folds * per_fold / 3600}  # fmt: skip
            if spec.deep:
                history = pd.read_csv(out["history"], sep="\t")
                entry["epochs_run"] = len(history)
            predictions = pd.read_csv(out["predictions"], sep="\t")
            entry["fold0_accuracy"] = _accuracy(predictions)
            if all_folds:
                entry |= _other_folds(model, cohort, splits, settings, per_fold)
            results[model] = entry
            print(model, {k: round(v, 2) if isinstance(v, float) else v for k, v in entry.items()})
            write_result("models", results)
    trained = [m for m in MODELS if m in results]
    results["cv_minutes_all_models"] = sum(results[m]["cv_minutes"] for m in trained)
    if all(m in results and "cv_minutes_measured" in results[m] for m in MODELS):
        results["cv_minutes_all_models_measured"] = sum(
            results[m]["cv_minutes_measured"] for m in MODELS
        )
    results["models_in_total"] = trained
    write_result("models", results)


if __name__ == "__main__":
    names = [a for a in sys.argv[1:] if a != "--all-folds"]
    main(names or list(MODELS), all_folds="--all-folds" in sys.argv[1:])
