"""Simulation presets and the validated settings that every simulator function receives."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

#: Group label of the patients (subthreshold depression).
PATIENT_GROUP = "StD"
#: Group label of the healthy controls.
CONTROL_GROUP = "HC"
#: Slice acquisition orders the simulator knows.
SLICE_ORDERS = ("ascending", "interleaved")

#: Image geometry, run length and cohort size of each preset. Voxel sizes are in mm, listed
#: as (in-plane, in-plane, slice); matrices as (rows, columns). The T1 is a sagittal 3D
#: acquisition (slices run left-right), the BOLD an axial 2D multi-slice one.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "n_per_group": {PATIENT_GROUP: 3, CONTROL_GROUP: 3},
        "t1_voxel_mm": (2.0, 2.0, 2.66),
        "t1_matrix": (128, 128),
        "t1_slices": 72,
        "bold_voxel_mm": (4.0, 4.0, 6.0),
        "bold_matrix": (60, 60),
        "bold_slices": 26,
        "n_volumes": 60,
        "dummy_scans": 10,
        "motion_spikes": 1,
    },
    # The demo is sized for 2 cores (issue 3). One jerk in its 100 volumes gives the head
    # motion of the former 130-volume demo with two (true mean FD 0.25-0.39 mm, against
    # 0.28-0.38): with two, three of its 16 subjects failed qc.max_mean_fd_mm.
    "demo": {
        "n_per_group": {PATIENT_GROUP: 8, CONTROL_GROUP: 8},
        "t1_voxel_mm": (2.0, 2.0, 2.66),
        "t1_matrix": (128, 128),
        "t1_slices": 72,
        "bold_voxel_mm": (3.0, 3.0, 4.8),
        "bold_matrix": (80, 80),
        "bold_slices": 33,
        "n_volumes": 100,
        "dummy_scans": 10,
        "motion_spikes": 1,
    },
    "paper": {
        "n_per_group": {PATIENT_GROUP: 56, CONTROL_GROUP: 70},
        "t1_voxel_mm": (1.0, 1.0, 1.33),
        "t1_matrix": (256, 256),
        "t1_slices": 144,
        "bold_voxel_mm": (3.0, 3.0, 4.8),
        "bold_matrix": (80, 80),
        "bold_slices": 33,
        "n_volumes": 240,
        "dummy_scans": 10,
        "motion_spikes": 3,
    },
}

#: Defaults shared by every preset (overridable from the config).
DEFAULTS: dict[str, Any] = {
    "preset": "demo",
    "effect_size": 2.0,
    "connectivity_effect_size": None,
    "seed": 0,
    "slice_order": "interleaved",
    "motion_mm": 0.3,
    "tr_s": 2.0,
}

#: Keys accepted in the ``simulate:`` block of config.yaml.
CONFIG_KEYS = (
    "preset",
    "n_per_group",
    "effect_size",
    "connectivity_effect_size",
    "seed",
    "slice_order",
    "motion_mm",
    "motion_spikes",
    "n_volumes",
    "dummy_scans",
)


@dataclasses.dataclass(frozen=True)
class SimulationSettings:
    """Everything that determines a simulated cohort; equal settings give identical data.

    Attributes
    ----------
    preset : str
        ``tiny``, ``demo`` or ``paper``.
    n_patients, n_controls : int
        Cohort size per group.
    effect_size : float
        Grey-matter effect, as Cohen's d per target region: patients' grey-matter density in
        the AAL pallidum and precentral gyrus is lowered by ``effect_size`` times the
        between-subject standard deviation of regional grey matter (5 %). 0 = no difference.
    connectivity_effect_size : float
        Default-mode <-> ventral-striatum coupling increase in patients, in units of the
        between-subject SD of that coupling as observed in a demo-length run (0.15 in
        correlation units; see :mod:`~neurofusion.simulate.function`). Defaults to
        ``effect_size``.
    seed : int
        Cohort seed; with the participant id it seeds every random stream of a subject.
    slice_order : str
        ``ascending`` or ``interleaved`` (Siemens convention) BOLD slice acquisition.
    motion_mm : float
        Standard deviation (mm) of each translation over the run; rotations get the same
        displacement at 50 mm radius.
    motion_spikes : int
        Number of single-volume jerks of 4 x ``motion_mm``.
    n_volumes, dummy_scans : int
        BOLD volumes kept after, and dummy volumes acquired before, steady state.
    tr_s : float
        Repetition time of the BOLD run (s).
    t1_voxel_mm, t1_matrix, t1_slices
        T1 voxel size (mm; in-plane, in-plane, slice), in-plane matrix, number of sagittal
        slices.
    bold_voxel_mm, bold_matrix, bold_slices
        The same for the axial BOLD slices.
    """

    preset: str
    n_patients: int
    n_controls: int
    effect_size: float
    connectivity_effect_size: float
    seed: int
    slice_order: str
    motion_mm: float
    motion_spikes: int
    n_volumes: int
    dummy_scans: int
    tr_s: float
    t1_voxel_mm: tuple[float, float, float]
    t1_matrix: tuple[int, int]
    t1_slices: int
    bold_voxel_mm: tuple[float, float, float]
    bold_matrix: tuple[int, int]
    bold_slices: int

    @property
    def n_per_group(self) -> dict[str, int]:
        """Cohort size per group label."""
        return {PATIENT_GROUP: self.n_patients, CONTROL_GROUP: self.n_controls}

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable copy (tuples become lists)."""
        return dataclasses.asdict(self)


def settings_from_config(sim: Mapping[str, Any] | None = None) -> SimulationSettings:
    """Validate the ``simulate:`` block of config.yaml and fill in the preset.

    Parameters
    ----------
    sim : mapping, optional
        Keys from :data:`CONFIG_KEYS`; missing keys take the preset's or :data:`DEFAULTS`.
        ``n_per_group`` is an int (both groups) or a mapping ``{"StD": n, "HC": m}``.

    Returns
    -------
    SimulationSettings

    Raises
    ------
    ValueError
        On an unknown key, an unknown preset or slice order, or an out-of-range value; the
        message names the key.
    """
    sim = dict(sim or {})
    unknown = sorted(set(sim) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(
            f"simulate: unknown key(s) {unknown}; allowed keys are {list(CONFIG_KEYS)}"
        )
    preset = sim.get("preset", DEFAULTS["preset"])
    if preset not in PRESETS:
        raise ValueError(f"simulate.preset must be one of {sorted(PRESETS)}, not {preset!r}")
    values = {**DEFAULTS, **PRESETS[preset], **{k: v for k, v in sim.items() if v is not None}}
    n_patients, n_controls = _group_sizes(values["n_per_group"])
    effect = _number(values, "effect_size", minimum=0.0)
    conn_effect = values["connectivity_effect_size"]
    conn_effect = (
        effect if conn_effect is None else _number(values, "connectivity_effect_size", 0.0)
    )
    if values["slice_order"] not in SLICE_ORDERS:
        raise ValueError(
            f"simulate.slice_order must be one of {list(SLICE_ORDERS)}, "
            f"not {values['slice_order']!r}"
        )
    return SimulationSettings(
        preset=preset,
        n_patients=n_patients,
        n_controls=n_controls,
        effect_size=effect,
        connectivity_effect_size=conn_effect,
        seed=_integer(values, "seed", 0),
        slice_order=values["slice_order"],
        motion_mm=_number(values, "motion_mm", 0.0),
        motion_spikes=_integer(values, "motion_spikes", 0),
        n_volumes=_integer(values, "n_volumes", 10),
        dummy_scans=_integer(values, "dummy_scans", 0),
        tr_s=float(values["tr_s"]),
        t1_voxel_mm=tuple(values["t1_voxel_mm"]),
        t1_matrix=tuple(values["t1_matrix"]),
        t1_slices=int(values["t1_slices"]),
        bold_voxel_mm=tuple(values["bold_voxel_mm"]),
        bold_matrix=tuple(values["bold_matrix"]),
        bold_slices=int(values["bold_slices"]),
    )


def _group_sizes(value: Any) -> tuple[int, int]:
    """(patients, controls) from an int or a ``{"StD": n, "HC": m}`` mapping."""
    if isinstance(value, Mapping):
        extra = sorted(set(value) - {PATIENT_GROUP, CONTROL_GROUP})
        if extra:
            raise ValueError(
                f"simulate.n_per_group: unknown group(s) {extra}; "
                f"use {PATIENT_GROUP!r} and {CONTROL_GROUP!r}"
            )
        n_p = _integer({"n_per_group": value.get(PATIENT_GROUP, 0)}, "n_per_group", 0)
        n_c = _integer({"n_per_group": value.get(CONTROL_GROUP, 0)}, "n_per_group", 0)
    else:
        n_p = n_c = _integer({"n_per_group": value}, "n_per_group", 0)
    if n_p + n_c == 0:
        raise ValueError("simulate.n_per_group: the cohort is empty")
    return n_p, n_c


def _integer(values: Mapping[str, Any], key: str, minimum: int) -> int:
    """``values[key]`` as an int >= ``minimum``; ValueError naming ``simulate.key`` if not."""
    value = values[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"simulate.{key} must be an integer >= {minimum}, not {value!r}")
    return value


def _number(values: Mapping[str, Any], key: str, minimum: float) -> float:
    """``values[key]`` as a float >= ``minimum``; ValueError naming ``simulate.key`` if not."""
    value = values[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ValueError(f"simulate.{key} must be a number >= {minimum}, not {value!r}")
    return float(value)
