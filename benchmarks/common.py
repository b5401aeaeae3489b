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
