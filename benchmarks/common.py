"""Timing helpers for the benchmarks: medians of repeated runs, written as JSON."""

from __future__ import annotations

import platform
import resource
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neurofusion.fileio import write_json
from neurofusion.provenance import software_versions
from neurofusion.training.cohort import assemble_cohort
from neurofusion.training.layout import fold_outputs, split_paths
from neurofusion.training.registry import MODELS
from neurofusion.training.run import create_splits, run_fold
from neurofusion.training.settings import TrainSettings

RESULTS = Path(__file__).resolve().parent / "results"


def measure(func: Callable[[], Any], repeats: int = 5) -> dict[str, float]:
    """Run ``func`` ``repeats`` times.

    Returns
    -------
    dict
        ``seconds_median``, ``seconds_min``, ``seconds_max`` (wall clock, s) and
        ``peak_rss_mb``: the high-water mark of resident memory (MiB) of this process
        and, separately, of its finished children (external tools such as dcm2niix).
    """
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return {
        "repeats": repeats,
        "seconds_median": statistics.median(times),
        "seconds_min": min(times),
        "seconds_max": max(times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def write_result(name: str, results: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json`` with the machine and software versions."""
    record = {
        "benchmark": name,
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
        "software": software_versions(),
        "results": results,
    }
    return write_json(RESULTS / f"{name}.json", record)


def assemble_synthetic(root: Path, resolution_mm: float) -> Path:
    """Assemble the models-stage cohort of a :func:`~neurofusion.training.synthetic.
    write_synthetic_cohort` folder (both modalities, StD positive) on the CNN grid of
    ``resolution_mm``; returns the cohort folder."""
    cohort = root / "models" / "cohort"
    assemble_cohort(root / "rawdata" / "participants.tsv", root / "qc" / "exclusions.tsv",
                    root / "derivatives", cohort, "StD", ["T1w", "bold"],
                    resolution_mm)  # fmt: skip
    return cohort


def split_synthetic(root: Path, folds: int, models: dict[str, Any]) -> list[Path]:
    """Write ``folds`` split files of the assembled cohort under ``root`` as the workflow
    does (one repeat, the ``models:`` block's seed and validation fraction)."""
    splits = split_paths(root / "models" / "splits", folds)
    create_splits(root / "models" / "cohort", splits, folds, 1, models["seed"],
                  models["validation_fraction"])  # fmt: skip
    return splits


def train_fold(
    model: str, cohort: Path, splits: list[Path], k: int, settings: TrainSettings
) -> dict[str, Path]:
    """Train ``model`` on fold ``k`` as its workflow job does (with that fold's branches,
    trained before it, from ``cohort.parent``); returns the fold's output paths."""
    out = fold_outputs(cohort.parent, model, k)
    branches = {b: cohort.parent / b / f"fold-{k}" for b in MODELS[model].branches}
    run_fold(model, cohort, splits[k], k, out, settings, branches or None)
    return out
