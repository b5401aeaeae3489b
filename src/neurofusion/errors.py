"""Errors that tell the user which subject, which file, and what to do about it."""

from __future__ import annotations

from pathlib import Path


class NeurofusionError(Exception):
    """Base class of every error neurofusion raises on purpose."""


class InputError(NeurofusionError):
    """Bad input for one subject: names the subject, the offending path and the fix.

    Parameters
    ----------
    subject : str
        Participant label, with or without the ``sub-`` prefix.
    path : str or Path
        The file or folder at fault.
    problem : str
        What is wrong, in one sentence.
    fix : str
        What the user can do about it, in one sentence.
    """

    def __init__(self, subject: str, path: str | Path, problem: str, fix: str) -> None:
        self.subject = subject if subject.startswith("sub-") else f"sub-{subject}"
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.subject}: {problem} [{self.path}]. Fix: {fix}")
