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
    """Send log records to ``log_path`` (overwritten) and warnings and errors to stderr.

    Without ``log_path`` (the command line) every record at ``level`` goes to stderr.
    nipype's own console handler is kept out, so its node lines reach the console
    neither twice nor at all during a workflow job: they are in the job's log.
    """
    console = logging.StreamHandler(sys.stderr)
    handlers: list[logging.Handler] = [console]
    if log_path is not None:
        console.setLevel(logging.WARNING)
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=level, format=LOG_FORMAT, handlers=handlers, force=True)
    # nipype adds its console handler to the "nipype" logger on import unless that logger
    # has one already: a NullHandler there keeps it out, or replaces it if it came first.
    nipype = logging.getLogger("nipype")
    for handler in list(nipype.handlers):
        nipype.removeHandler(handler)
    nipype.addHandler(logging.NullHandler())


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
