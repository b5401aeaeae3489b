"""Cohorts and subjects: the simulator's entry points.

A subject is fully determined by ``(settings, participant_id, group)``: every random draw
comes from streams seeded by ``(settings.seed, participant_id)`` only
(:mod:`~neurofusion.simulate.streams`), and the group adds the planted effects on top of
the same draws. Hence adding subjects never changes existing ones, and with both effect
sizes 0 a patient and a control with the same id are bit-identical.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from neurofusion.fileio import atomic_path
from neurofusion.simulate.anatomy import (
    GM_TARGET_REGIONS,
    Anatomy,
    Sample,
    draw_anatomy,
    region_index,
    synthesize_t1,
)
from neurofusion.simulate.bold import Scanner, draw_scanner, epi_object, synthesize_bold
from neurofusion.simulate.dicom_writer import IDENTITY_KEYS, Session, fake_identity, write_session
from neurofusion.simulate.function import (
    Physiology,
    RegionSignals,
    draw_physiology,
    region_names,
    region_signals,
)
from neurofusion.simulate.geometry import (
    Grid,
    axial_grid,
    canonical,
    relayout,
    sagittal_grid,
    slice_times,
)
from neurofusion.simulate.motion import Motion, draw_motion
from neurofusion.simulate.settings import CONTROL_GROUP, PATIENT_GROUP, SimulationSettings
from neurofusion.simulate.streams import subject_rng
from neurofusion.simulate.truth import (
    AFFINE_FILE,
    INVERSE_WARP_FILE,
    WARP_FILE,
    write_anatomy_truth,
    write_function_truth,
    write_readme,
    write_table,
)

#: Share of men in the simulated cohort (the study: 35 of 126).
MALE_FRACTION = 0.28
#: Age range (years, inclusive) of the study's participants.
AGE_RANGE = (18, 63)
#: Sessions start between 08:00 and 08:00 + this many minutes, so that every acquisition
#: ends before 13:10, while dcm2niix's float32 HHMMSS still resolves 1/128 s
#: (:data:`~neurofusion.simulate.geometry.SLICE_TIME_QUANTUM_S`).
LATEST_START_MIN = 270
_PARTICIPANT = re.compile(r"sub-[A-Za-z0-9]+")


def demographics(settings: SimulationSettings, participant_id: str) -> tuple[int, str]:
    """(age in years, sex ``M``/``F``) of a subject, from its ``demographics`` stream."""
    rng = subject_rng(settings.seed, participant_id, "demographics")
    age = int(rng.integers(AGE_RANGE[0], AGE_RANGE[1] + 1))
    return age, "M" if rng.random() < MALE_FRACTION else "F"


def cohort_participants(settings: SimulationSettings) -> pd.DataFrame:
    """The simulated cohort as a participants table.

    Groups alternate StD, HC, StD, HC... while both have subjects left, then the remainder
    follows, so raising ``n_per_group`` only appends subjects.

    Returns
    -------
    pandas.DataFrame
        Columns ``participant_id`` (``sub-001``...), ``group``, ``age``, ``sex``.
    """
    pairs = min(settings.n_patients, settings.n_controls)
    groups = [PATIENT_GROUP, CONTROL_GROUP] * pairs
    groups += [PATIENT_GROUP] * (settings.n_patients - pairs)
    groups += [CONTROL_GROUP] * (settings.n_controls - pairs)
    rows = []
    for number, group in enumerate(groups, start=1):
        participant_id = f"sub-{number:03d}"
        age, sex = demographics(settings, participant_id)
        rows.append({"participant_id": participant_id, "group": group, "age": age, "sex": sex})
    return pd.DataFrame(rows, columns=["participant_id", "group", "age", "sex"])


def write_participants(settings: SimulationSettings, path: str | Path) -> Path:
    """Write :func:`cohort_participants` as a BIDS ``participants.tsv`` (atomically)."""
    with atomic_path(path) as tmp:
        write_table(tmp, cohort_participants(settings))
    return Path(path)


@dataclasses.dataclass(frozen=True)
class Subject:
    """Every random quantity of one simulated subject (no images yet).

    Attributes
    ----------
    participant_id, group : str
    settings : SimulationSettings
    anatomy : Anatomy
    signals : RegionSignals
    physiology : Physiology
    motion : Motion
    scanner : Scanner
    t1_acquisition : Grid
        Sagittal grid in which the T1 DICOM slices are written.
    t1_grid : Grid
        The same voxels in the canonical layout dcm2niix produces (the truth's T1 grid).
    bold_grid : Grid
    slice_times : numpy.ndarray
        (n_slices,) BIDS SliceTiming (s).
    """

    participant_id: str
    group: str
    settings: SimulationSettings
    anatomy: Anatomy
    signals: RegionSignals
    physiology: Physiology
    motion: Motion
    scanner: Scanner
    t1_acquisition: Grid
    t1_grid: Grid
    bold_grid: Grid
    slice_times: np.ndarray

    @property
    def reference_time(self) -> float:
        """Middle of the slice acquisition window (s after volume start)."""
        return float((self.slice_times.min() + self.slice_times.max()) / 2)

    def true_timeseries(self) -> np.ndarray:
        """(n_volumes, 116) region signals at the retained volumes' reference times."""
        s = self.settings
        volumes = np.arange(s.dummy_scans, s.dummy_scans + s.n_volumes)
        return self.signals.at(volumes * s.tr_s + self.reference_time)


def build_subject(participant_id: str, group: str, settings: SimulationSettings) -> Subject:
    """Draw every random quantity of a subject (see :class:`Subject`)."""
    if not _PARTICIPANT.fullmatch(participant_id):
        raise ValueError(f"participant_id must look like 'sub-001', not {participant_id!r}")
    if group not in (PATIENT_GROUP, CONTROL_GROUP):
        raise ValueError(f"{participant_id}: group must be {PATIENT_GROUP!r} or {CONTROL_GROUP!r}")
    acquisition = sagittal_grid(settings.t1_voxel_mm, settings.t1_matrix, settings.t1_slices)
    bold_grid = axial_grid(settings.bold_voxel_mm, settings.bold_matrix, settings.bold_slices)
    return Subject(
        participant_id=participant_id,
        group=group,
        settings=settings,
        anatomy=draw_anatomy(settings, participant_id, group),
        signals=region_signals(settings, participant_id, group),
        physiology=draw_physiology(settings, participant_id),
        motion=draw_motion(settings, participant_id),
        scanner=draw_scanner(subject_rng(settings.seed, participant_id, "scanner")),
        t1_acquisition=acquisition,
        t1_grid=canonical(acquisition),
        bold_grid=bold_grid,
        slice_times=slice_times(bold_grid.shape[2], settings.tr_s, settings.slice_order),
    )


def simulate_subject(
    participant_id: str,
    group: str,
    settings: SimulationSettings,
    dicom_dir: str | Path,
    truth_dir: str | Path,
    identity: Mapping[str, str] | None = None,
) -> None:
    """Simulate one subject: DICOM under ``dicom_dir``, ground truth under ``truth_dir``.

    Both folders are built beside their destination and renamed into place only when
    complete, replacing any previous version.

    Parameters
    ----------
    participant_id : str
        ``sub-<label>``.
    group : str
        ``StD`` or ``HC``.
    settings : SimulationSettings
    dicom_dir : path
        Receives ``02_t1_mprage_sag_p2_iso/`` and ``03_ep2d_bold_rest/`` (classic DICOM,
        one file per slice).
    truth_dir : path
        Receives the files documented in its ``README.json``.
    identity : mapping, optional
        Overrides of the fake patient fields (keys from
        :data:`~neurofusion.simulate.dicom_writer.IDENTITY_KEYS`).
    """
    subject = build_subject(participant_id, group, settings)
    session = make_session(settings, participant_id, identity)
    seed = settings.seed
    t1 = synthesize_t1(
        subject.anatomy, subject.t1_grid, subject_rng(seed, participant_id, "t1_noise")
    )
    obj = epi_object(subject.anatomy, subject.bold_grid)
    bold = synthesize_bold(
        obj,
        subject.bold_grid,
        subject.signals,
        subject.physiology,
        subject.motion,
        subject.slice_times,
        settings.tr_s,
        subject.scanner,
        subject_rng(seed, participant_id, "bold_noise"),
    )
    with atomic_path(truth_dir) as truth_tmp, atomic_path(dicom_dir) as dicom_tmp:
        truth_tmp.mkdir()
        dicom_tmp.mkdir()
        write_truth(truth_tmp, subject, t1.sample, obj.truth)
        write_session(
            dicom_tmp,
            session,
            relayout(t1.image, subject.t1_grid, subject.t1_acquisition),
            subject.t1_acquisition,
            bold,
            subject.bold_grid,
            subject.slice_times,
            settings.tr_s,
        )


def simulate_truth(
    participant_id: str, group: str, settings: SimulationSettings, truth_dir: str | Path
) -> None:
    """Write only the ground truth of a subject (no images, no DICOM).

    Identical, file for file, to the truth :func:`simulate_subject` writes; much faster,
    for studies of the planted effects over many subjects.
    """
    subject = build_subject(participant_id, group, settings)
    t1_sample = subject.anatomy.sample_grid(subject.t1_grid)
    obj = epi_object(subject.anatomy, subject.bold_grid)
    with atomic_path(truth_dir) as tmp:
        tmp.mkdir()
        write_truth(tmp, subject, t1_sample, obj.truth)


def make_session(
    settings: SimulationSettings, participant_id: str, identity: Mapping[str, str] | None
) -> Session:
    """Patient, date and identity fields of a subject's scan session."""
    unknown = sorted(set(identity or {}) - set(IDENTITY_KEYS))
    if unknown:
        raise ValueError(f"identity: unknown field(s) {unknown}; allowed: {list(IDENTITY_KEYS)}")
    age, sex = demographics(settings, participant_id)
    rng = subject_rng(settings.seed, participant_id, "identity")
    day = _dt.date(2019, 1, 7) + _dt.timedelta(days=int(rng.integers(0, 3 * 365)))
    study_date = day.strftime("%Y%m%d")
    study_time_s = 8 * 3600.0 + 60.0 * int(rng.integers(0, LATEST_START_MIN))
    fields = fake_identity(rng, sex, age, study_date)
    fields.update(identity or {})
    return Session(settings.seed, participant_id, fields, sex, age, study_date, study_time_s)


def write_truth(folder: Path, subject: Subject, t1_sample: Sample, epi_truth: Sample) -> None:
    """All truth files of a subject into an existing folder (see truth.README)."""
    settings = subject.settings
    write_anatomy_truth(folder, "T1w", t1_sample, subject.t1_grid)
    write_anatomy_truth(folder, "bold", epi_truth, subject.bold_grid)
    deformation = subject.anatomy.deformation
    deformation.write_ants(folder / AFFINE_FILE, folder / WARP_FILE, folder / INVERSE_WARP_FILE)
    write_function_truth(
        folder,
        region_names(),
        subject.true_timeseries(),
        subject.signals.model(),
        subject.motion.parameters,
        settings.dummy_scans,
    )
    targets = region_index(GM_TARGET_REGIONS)
    write_readme(
        folder,
        {
            "participant_id": subject.participant_id,
            "group": subject.group,
            "preset": settings.preset,
            "seed": settings.seed,
            "effect_size": settings.effect_size,
            "connectivity_effect_size": settings.connectivity_effect_size,
            "slice_order": settings.slice_order,
            "SliceTiming": subject.slice_times.round(6),
            "RepetitionTime": settings.tr_s,
            "ReferenceTime": round(subject.reference_time, 6),
            "n_volumes": settings.n_volumes,
            "dummy_scans": settings.dummy_scans,
            "gm_factor": dict(
                zip(GM_TARGET_REGIONS, subject.anatomy.gm_factor[targets].round(6), strict=True)
            ),
            "dmn_striatum_coupling": round(subject.signals.coupling, 6),
            "bold_amplitude": round(subject.scanner.bold_amplitude, 6),
            "respiration_hz": round(subject.physiology.respiration_hz, 6),
            "cardiac_hz": round(subject.physiology.cardiac_hz, 6),
            "native_to_mni_affine_ras": deformation.native_to_mni_affine.round(9),
            "T1w_grid": {"shape": subject.t1_grid.shape, "affine": subject.t1_grid.affine},
            "bold_grid": {"shape": subject.bold_grid.shape, "affine": subject.bold_grid.affine},
        },
    )
