"""What failed in a Snakemake run, and how to go on without the failed subjects.

The workflow's ``onerror:`` handler reads Snakemake's log of the run, where each failed
job has an ``Error in rule <name>:`` block listing its output and log files, and prints one
summary: the failed subjects, their logs, and how to continue to the group stages without
them. A job's subject is the ``sub-<label>`` entity of its files (every per-subject output
and log is named that way).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ERROR_BLOCK = re.compile(r"^Error in rule (\w+):\n((?:[ \t]+.*(?:\n|$))*)", re.MULTILINE)
_SUBJECT = re.compile(r"sub-([A-Za-z0-9]+)")
_LOG_LINE = re.compile(r"^\s+log: (.+?)(?: \(check log file\(s\) for error details\))?$")


@dataclass(frozen=True)
class FailedJob:
    """One failed job: its rule, its subject (``None`` for a group job) and its logs."""

    rule: str
    subject: str | None
    logs: tuple[str, ...]


def failed_jobs(snakemake_log: str) -> list[FailedJob]:
    """The failed jobs reported in the text of a Snakemake log, in order, without repeats."""
    found: dict[tuple[str, str | None], FailedJob] = {}
    for match in _ERROR_BLOCK.finditer(snakemake_log):
        rule, body = match.groups()
        subjects = set(_SUBJECT.findall(body))
        logs = tuple(
            path
            for line in body.splitlines()
            if (log := _LOG_LINE.match(line))
            for path in log.group(1).split(", ")
        )
        subject = subjects.pop() if len(subjects) == 1 else None
        found.setdefault((rule, subject), FailedJob(rule, subject, logs))
    return list(found.values())


def failure_summary(failures: list[FailedJob], participants: str | None) -> str:
    """A message naming the failed subjects and saying how to go on without them.

    Parameters
    ----------
    failures : list of FailedJob
        From :func:`failed_jobs`.
    participants : str or None
        The participants table a subject can be removed from; ``None`` for the simulated
        cohort, which has none.

    Returns
    -------
    str
        Empty when nothing failed.
    """
    if not failures:
        return ""
    lines = []
    subjects = sorted({f"sub-{job.subject}" for job in failures if job.subject})
    if subjects:
        lines.append(f"neurofusion: {len(subjects)} subject(s) failed: {', '.join(subjects)}.")
        lines += [
            f"  sub-{job.subject}: rule {job.rule}, log {', '.join(job.logs) or '(none)'}"
            for job in failures
            if job.subject
        ]
        if participants is None:
            lines.append(
                "Simulated subjects should never fail: please report this with the log "
                "above. The other subjects' outputs are complete."
            )
        else:
            lines.append(
                "The other subjects' outputs are complete. To continue to the group stages "
                f"without the failed subject(s), fix their input or remove their rows "
                f"({' '.join(subjects)}) from {participants}, then run the same command "
                "again: only the group stages rerun."
            )
    for job in failures:
        if not job.subject:
            lines.append(
                f"neurofusion: group rule {job.rule} failed, log {', '.join(job.logs) or '(none)'}."
            )
    return "\n".join(lines)
