"""Independent, reproducible random streams per subject and purpose.

A subject's streams depend only on the cohort seed, the participant id and the purpose,
never on the group, the cohort size or the order of simulation: adding subjects or
changing the effect size leaves every draw of every subject unchanged.
"""

from __future__ import annotations

import hashlib

import numpy as np

#: Purposes that own a stream; each gets an independent generator per subject.
PURPOSES = (
    "demographics",
    "identity",
    "anatomy",
    "deformation",
    "t1_noise",
    "function",
    "physiology",
    "motion",
    "scanner",
    "bold_noise",
)


def stable_hash(text: str) -> int:
    """64-bit integer from the SHA-256 of ``text`` (stable across processes, unlike hash())."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")


def subject_rng(seed: int, participant_id: str, purpose: str) -> np.random.Generator:
    """The generator of one subject for one purpose.

    Parameters
    ----------
    seed : int
        Cohort seed (``simulate.seed``), >= 0.
    participant_id : str
        E.g. ``"sub-001"``.
    purpose : str
        One of :data:`PURPOSES`.

    Returns
    -------
    numpy.random.Generator
        PCG64 seeded by ``SeedSequence([seed, hash(id), hash(purpose)])``.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown random stream {purpose!r}; known: {PURPOSES}")
    entropy = [int(seed), stable_hash(participant_id), stable_hash(purpose)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))
