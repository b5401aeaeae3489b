"""Provenance records: what made an output (software, parameters, inputs, seed)."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from neurofusion import __version__
from neurofusion.fileio import sha256_file, write_json

#: Distributions whose versions every provenance record lists.
TRACKED_PACKAGES = (
    "numpy",
    "scipy",
    "nibabel",
    "nilearn",
    "nipype",
    "antspyx",
    "dcm2niix",
    "pydicom",
    "scikit-learn",
    "torch",
    "snakemake",
)


def software_versions() -> dict[str, str]:
    """Versions of Python, neurofusion and the packages in :data:`TRACKED_PACKAGES`."""
    out = {"python": platform.python_version(), "neurofusion": __version__}
    for name in TRACKED_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def scheduler_job() -> dict[str, str] | None:
    """The Slurm job this process runs in (ID, node), or ``None`` outside Slurm."""
    if "SLURM_JOB_ID" not in os.environ:
        return None
    return {
        "scheduler": "slurm",
        "job_id": os.environ["SLURM_JOB_ID"],
        "node": os.environ.get("SLURMD_NODENAME", platform.node()),
    }


def input_checksums(paths: Iterable[str | Path]) -> dict[str, str]:
    """SHA-256 of each input file (folders are walked, files sorted by path)."""
    sums: dict[str, str] = {}
    for path in map(Path, paths):
        members = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for member in members:
            sums[str(member)] = sha256_file(member)
    return sums


def provenance_record(
    step: str,
    inputs: Iterable[str | Path] = (),
    parameters: Mapping[str, Any] | None = None,
    seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a provenance dictionary for one output.

    Parameters
    ----------
    step : str
        Name of the processing step (e.g. ``"convert"``).
    inputs : iterable of path
        Files or folders the step read; each file's SHA-256 is recorded.
    parameters : mapping, optional
        The parameters that made the output.
    seed : int, optional
        Random seed, when the step is stochastic.
    extra : mapping, optional
        Further step-specific fields.

    Returns
    -------
    dict
        JSON-serialisable record. It holds no wall-clock time except under
        ``"created"``, and under ``"job"`` the Slurm job that made the output (absent
        outside Slurm); comparisons of reruns should ignore both.
    """
    record: dict[str, Any] = {
        "step": step,
        "software": software_versions(),
        "parameters": dict(parameters or {}),
        "inputs": input_checksums(inputs),
        "seed": seed,
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    job = scheduler_job()
    if job:
        record["job"] = job
    if extra:
        record.update(extra)
    return record


def write_provenance(path: str | Path, **kwargs: Any) -> Path:
    """Build a record with :func:`provenance_record` and write it atomically as JSON."""
    return write_json(path, provenance_record(**kwargs))
