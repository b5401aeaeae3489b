"""Atomic, reproducible file writing: nothing half-written survives a failure."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only on success.

    The temporary file (or folder) lives in the destination folder so the final
    ``os.replace`` is atomic on POSIX file systems. On any exception the temporary
    is removed and ``path`` is left untouched.

    Parameters
    ----------
    path : str or Path
        Final destination (file or folder).

    Yields
    ------
    Path
        Where the caller writes. Its suffixes equal those of ``path`` so that
        libraries choosing a format by extension (nibabel's ``.nii.gz``) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        if path.is_dir() and tmp.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON, atomically; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` atomically; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def sha256_file(path: str | Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks of ``chunk_bytes``."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def files_checksum(paths) -> str:
    """One SHA-256 over many files: the digest of their sorted ``name  sha256`` lines.

    Parameters
    ----------
    paths : iterable of str or Path
        Files; their base names and contents enter the digest, not their folders, so a
        moved folder keeps its checksum.
    """
    lines = sorted(f"{Path(p).name}  {sha256_file(p)}" for p in paths)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _json_default(value: Any) -> Any:
    """Serialise numpy scalars/arrays and paths that ``json`` cannot."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")
