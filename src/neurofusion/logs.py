"""Logging for workflow jobs: one log file per job, clean one-line errors for bad input."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neurofusion.errors import NeurofusionError
from neurofusion.provenance import scheduler_job

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(log_path: str | Path | None = None, level: int = logging.INFO) -> None:
    """Send neurofusion's log records to stderr and, if given, to ``log_path`` (overwritten)."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=level, format=LOG_FORMAT, handlers=handlers, force=True)


def run_step(log_path: str | Path, func: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Run one workflow step with logging; turn a :class:`NeurofusionError` into exit status 1.

    The error's message (subject, file, fix) is written to the job's log and to stderr,
    without a traceback, so that Snakemake's ``--show-failed-logs`` shows the user what
    to do. Any other exception is a bug: its traceback goes to the log too, and it is
    raised again. Under Slurm the log's
    first line names the job.

    Parameters
    ----------
    log_path : str or Path
        The job's log file.
    func : callable
        Library function to call with ``**kwargs``.

    Returns
    -------
    Any
        Whatever ``func`` returns.
    """
    configure_logging(log_path)
    job = scheduler_job()
    if job:
        logging.getLogger("neurofusion").info("Slurm job %s on %s", job["job_id"], job["node"])
    try:
        return func(**kwargs)
    except NeurofusionError as err:
        logging.getLogger("neurofusion").error("%s", err)
        raise SystemExit(1) from err
    except Exception:
        logging.getLogger("neurofusion").exception(
            "unexpected error in %s (a bug: please report it with this log)", func.__name__
        )
        raise
