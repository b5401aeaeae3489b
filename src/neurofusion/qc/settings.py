"""The ``qc`` block of config.yaml: exclusion thresholds of motion and anatomy."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

#: What the group QC does with an anatomical outlier (``qc.anat.action``).
ANAT_ACTIONS = ("flag", "exclude")


@dataclasses.dataclass(frozen=True)
class QCSettings:
    """Exclusion thresholds (``qc`` in config.yaml).

    Attributes
    ----------
    max_mean_fd_mm : float
        Exclude a subject whose mean framewise displacement exceeds this (mm).
    max_fraction_high_fd : float
        Exclude a subject with more than this fraction of volumes above ``high_fd_mm``.
    high_fd_mm : float
        FD (mm) above which a volume counts as high-motion.
    anat_action : str
        ``flag``: anatomical outliers are named in the group QC table only; ``exclude``:
        they are also excluded from the models (``qc.anat.action``).
    anat_z_threshold : float
        A metric is an outlier beyond this robust z score against the cohort, in the
        direction that means worse quality (``qc.anat.z_threshold``).
    """

    max_mean_fd_mm: float = 0.5
    max_fraction_high_fd: float = 0.2
    high_fd_mm: float = 0.5
    anat_action: str = "flag"
    anat_z_threshold: float = 3.5

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> QCSettings:
        """Settings from the ``qc`` block of config.yaml."""
        motion = ("max_mean_fd_mm", "max_fraction_high_fd", "high_fd_mm")
        fields = {key: float(block[key]) for key in motion if key in block}
        anat = block.get("anat", {})
        if "action" in anat:
            if anat["action"] not in ANAT_ACTIONS:
                raise ValueError(f"qc.anat.action must be one of {ANAT_ACTIONS}")
            fields["anat_action"] = anat["action"]
        if "z_threshold" in anat:
            fields["anat_z_threshold"] = float(anat["z_threshold"])
        return cls(**fields)
