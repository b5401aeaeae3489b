"""Wall time and peak memory of the anatomical and functional workflows for one subject.

Simulates one subject of the given preset (default ``paper``: T1 1 x 1 x 1.33 mm,
256 x 256 x 144; BOLD 3 x 3 x 4.8 mm, 80 x 80 x 33, 240 + 10 volumes), converts it, then
runs ``run_anat`` and ``run_func`` with ``threads`` threads (default 2), each in a fresh
process so that its peak resident memory is its own, ``repeats`` times (nipype's cache is
cleared between repeats). Writes ``benchmarks/results/preprocess_<preset>.json`` (2
threads) or ``preprocess_<preset>_threads-<n>.json``; the per-node times of the last run
are included to show where the time goes.

Run: ``python benchmarks/bench_preprocess.py [preset] [repeats] [threads]``.
"""

from __future__ import annotations

import multiprocessing
import pickle
import resource
import shutil
import statistics
import sys
import tempfile
import time
from gzip import open as gzip_open
from pathlib import Path

import yaml
from common import write_result

REPO = Path(__file__).resolve().parents[1]


def _stage(name: str, kwargs: dict, queue) -> None:
    """Run one stage in this (child) process; report seconds and peak RSS (MiB)."""
    from neurofusion.preprocessing.anat import run_anat
    from neurofusion.preprocessing.func import run_func

    start = time.perf_counter()
    {"anat": run_anat, "func": run_func}[name](**kwargs)
    elapsed = time.perf_counter() - start
    queue.put((elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def _timed(name: str, kwargs: dict) -> tuple[float, float]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_stage, args=(name, kwargs, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def _node_seconds(work: Path) -> dict[str, float]:
    """Seconds per nipype node of the runs under ``work`` (from nipype's result files)."""
    out = {}
    for result in work.rglob("result_*.pklz"):
        with gzip_open(result) as handle:
            runtime = pickle.load(handle).runtime
        if runtime is not None and getattr(runtime, "duration", None) is not None:
            out[f"{result.parent.parent.name}/{result.parent.name}"] = round(runtime.duration, 2)
    return dict(sorted(out.items(), key=lambda item: -item[1]))


def main(preset: str = "paper", repeats: int = 1, threads: int = 2) -> None:
    """Simulate, convert, then time anat and func ``repeats`` times."""
    from neurofusion.dicom.convert import convert_subject
    from neurofusion.dicom.select import rules_from_config
    from neurofusion.preprocessing.anat_outputs import anat_outputs
    from neurofusion.preprocessing.func import FuncSettings
    from neurofusion.simulate import cohort_participants, settings_from_config, simulate_subject

    rules = rules_from_config(yaml.safe_load((REPO / "config.yaml").read_text())["dicom"])
    settings = settings_from_config({"preset": preset, "seed": 0})
    pid, group = cohort_participants(settings).iloc[0][["participant_id", "group"]]
    label = pid.removeprefix("sub-")
    with tempfile.TemporaryDirectory(prefix="neurofusion-bench-") as scratch:
        root = Path(scratch)
        simulate_subject(pid, group, settings, root / "dicom", root / "truth")
        convert_subject(label, root / "dicom", root / "raw", ["T1w", "bold"], rules)
        raw = root / "raw" / pid
        times: dict[str, list] = {"anat": [], "func": []}
        memory: dict[str, list] = {"anat": [], "func": []}
        for _ in range(repeats):
            shutil.rmtree(root / "work", ignore_errors=True)
            stages = {
                "anat": {"subject": label, "t1w": raw / "anat" / f"{pid}_T1w.nii.gz",
                         "deriv_root": root / "deriv", "work_dir": root / "work",
                         "threads": threads},
                "func": {"subject": label, "bold": raw / "func" / f"{pid}_task-rest_bold.nii.gz",
                         "sidecar": raw / "func" / f"{pid}_task-rest_bold.json",
                         "anat": anat_outputs(root / "deriv", label),
                         "deriv_root": root / "deriv", "work_dir": root / "work",
                         "settings": FuncSettings(), "threads": threads},
            }  # fmt: skip
            for name, kwargs in stages.items():
                seconds, peak = _timed(name, kwargs)
                times[name].append(seconds)
                memory[name].append(peak)
        nodes = _node_seconds(root / "work")
    results = {
        name: {
            "repeats": repeats,
            "seconds_median": statistics.median(times[name]),
            "seconds_all": times[name],
            "peak_rss_mb_max": max(memory[name]),
        }
        for name in times
    }
    results["total_seconds_median"] = sum(r["seconds_median"] for r in results.values())
    results["preset"] = preset
    results["threads"] = threads
    results["node_seconds_last_run"] = nodes
    suffix = "" if threads == 2 else f"_threads-{threads}"
    print(write_result(f"preprocess_{preset}{suffix}", results))


if __name__ == "__main__":
    args = sys.argv[1:]
    main(
        args[0] if args else "paper",
        int(args[1]) if len(args) > 1 else 1,
        int(args[2]) if len(args) > 2 else 2,
    )
