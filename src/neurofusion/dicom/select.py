"""Choose which DICOM series becomes the subject's T1w image and which its resting BOLD.

Rules are regular expressions on SeriesDescription and ProtocolName plus the expected
dimensionality (3D anatomy, 4D time series). When several series fit one role the
documented rule is: more volumes first (a complete run beats one stopped early), then
the higher SeriesNumber (a scan repeated after a failed one comes later). If that still
ties, or ``on_multiple`` is ``"error"``, the subject stops with an error that lists the
candidates.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from neurofusion.dicom.discovery import SeriesInfo
from neurofusion.errors import InputError

log = logging.getLogger(__name__)

#: BIDS suffix of each role and the dimensionality its image must have.
ROLE_NDIM = {"T1w": 3, "bold": 4}


@dataclass(frozen=True)
class SeriesRule:
    """How to recognise the series of one role.

    Attributes
    ----------
    role : str
        ``"T1w"`` or ``"bold"``.
    include : str
        Regular expression; a series matches when its SeriesDescription or ProtocolName
        contains a match (``re.search``).
    exclude : str
        Regular expression; a matching SeriesDescription or ProtocolName rules the
        series out (derived maps, localisers, single-band references, ...).
    exclude_image_type : tuple of str
        ImageType values (upper case) that rule a series out, e.g. ``DERIVED``.
    """

    role: str
    include: str
    exclude: str = ""
    exclude_image_type: tuple[str, ...] = ()

    @property
    def ndim(self) -> int:
        """Dimensionality required of the role's image."""
        return ROLE_NDIM[self.role]

    def matches(self, series: SeriesInfo) -> bool:
        """True when the series' names match ``include``, not ``exclude``, nor an image type."""
        names = (series.description, series.protocol)
        if not any(re.search(self.include, name) for name in names if name):
            return False
        if self.exclude and any(re.search(self.exclude, name) for name in names if name):
            return False
        return not set(series.image_type) & set(self.exclude_image_type)


def rules_from_config(dicom_cfg: Mapping) -> dict[str, SeriesRule]:
    """Build one :class:`SeriesRule` per role from the ``dicom`` block of config.yaml."""
    exclude_types = tuple(v.upper() for v in dicom_cfg.get("exclude_image_type", ()))
    return {
        role: SeriesRule(
            role=role,
            include=spec["include"],
            exclude=spec.get("exclude", ""),
            exclude_image_type=exclude_types,
        )
        for role, spec in dicom_cfg["series"].items()
    }


def select_series(
    series: Sequence[SeriesInfo],
    rule: SeriesRule,
    subject: str,
    folder: str | Path,
    on_multiple: str = "latest",
) -> SeriesInfo:
    """Pick the one series that plays ``rule.role``.

    Parameters
    ----------
    series : sequence of SeriesInfo
        Every series found in the subject's folder.
    rule : SeriesRule
        The role's matching rule.
    subject : str
        Participant label for messages.
    folder : str or Path
        The subject's DICOM folder, for messages.
    on_multiple : {"latest", "error"}
        What to do when several series fit (see the module docstring).

    Returns
    -------
    SeriesInfo

    Raises
    ------
    InputError
        No series fits; only series of the wrong dimensionality fit (a 3D "BOLD" or a 4D
        "T1w"); or several fit and the rule cannot decide.
    """
    named = [s for s in series if rule.matches(s)]
    if not named:
        found = "; ".join(s.label for s in series) or "none"
        raise InputError(
            subject,
            folder,
            f"no DICOM series looks like the {rule.role} image (include pattern "
            f"{rule.include!r}); series found: {found}",
            f"adjust dicom.series.{rule.role}.include in config.yaml to match its "
            f"SeriesDescription, or drop {rule.role} from input.modalities",
        )
    fitting = [s for s in named if s.ndim == rule.ndim]
    for other in (s for s in named if s.ndim != rule.ndim):
        log.info(
            "sub-%s: %s matches %s by name but is %dD; ignored",
            subject,
            other.label,
            rule.role,
            other.ndim,
        )
    if not fitting:
        wrong = named[0]
        raise InputError(
            subject,
            folder,
            f"{wrong.label} is the only {rule.role} candidate but is {wrong.ndim}D "
            f"({wrong.n_volumes} volume(s)); a {rule.role} image must be {rule.ndim}D",
            "check the export (a BOLD run needs all its volumes; a T1w a single volume) or "
            f"tighten dicom.series.{rule.role}.include so the right series is chosen",
        )
    if len(fitting) == 1:
        return fitting[0]
    return _break_tie(fitting, rule, subject, folder, on_multiple)


def _break_tie(
    fitting: list[SeriesInfo], rule: SeriesRule, subject: str, folder, on_multiple: str
) -> SeriesInfo:
    listing = "; ".join(f"{s.label} ({s.n_volumes} volume(s))" for s in fitting)
    ranked = sorted(fitting, key=lambda s: (s.n_volumes, s.number), reverse=True)
    best, runner_up = ranked[0], ranked[1]
    undecided = (best.n_volumes, best.number) == (runner_up.n_volumes, runner_up.number)
    if on_multiple == "error" or undecided:
        why = (
            "the rule 'most volumes, then highest SeriesNumber' ties"
            if undecided
            else ("dicom.on_multiple is 'error'")
        )
        raise InputError(
            subject,
            folder,
            f"{len(fitting)} series fit the {rule.role} role ({listing}) and {why}",
            f"keep only the wanted series in the folder, or narrow dicom.series.{rule.role}"
            ".include/exclude so that one series matches",
        )
    log.warning(
        "sub-%s: %d series fit %s (%s); chose %s (most volumes, then highest SeriesNumber)",
        subject,
        len(fitting),
        rule.role,
        listing,
        best.label,
    )
    return best
