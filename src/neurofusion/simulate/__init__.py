"""Simulated cohorts with ground truth: the zero-configuration demo and the test bed.

The simulator makes what a Siemens 3 T scanner could have produced for the study's
protocol (sagittal MPRAGE T1, axial resting-state EPI, classic DICOM with fake patient
identities) from the MNI152 template, the AAL-116 atlas and a network model of resting
activity, and keeps the truth no real dataset has: motion, transforms, tissues, labels,
region time courses, connectivity and the planted group effects.
"""

from neurofusion.simulate.cohort import (
    cohort_participants,
    simulate_subject,
    simulate_truth,
    write_participants,
)
from neurofusion.simulate.settings import (
    CONTROL_GROUP,
    PATIENT_GROUP,
    PRESETS,
    SimulationSettings,
    settings_from_config,
)

__all__ = [
    "CONTROL_GROUP",
    "PATIENT_GROUP",
    "PRESETS",
    "SimulationSettings",
    "cohort_participants",
    "settings_from_config",
    "simulate_subject",
    "simulate_truth",
    "write_participants",
]
