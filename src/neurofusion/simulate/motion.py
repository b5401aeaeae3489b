"""Head motion during the BOLD run: a smooth random walk plus a few sudden jerks.

Convention (also written into the truth's README): volume n's head pose is the rigid
transform ``M_n = T(trans) @ Rx(rot_x) @ Ry(rot_y) @ Rz(rot_z)`` in scanner RAS+ mm, rotating
about the scanner isocentre (world origin, near the brain's centre). It maps a point of the
head at its reference position (the T1 position, which is also the position during the
first volume after the dummy scans) to where that point is during volume n. Realigning
volume n to the reference applies ``inv(M_n)``. Translations are in mm, rotations in degrees.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage as ndi

from neurofusion.simulate.deformation import rotation_matrix
from neurofusion.simulate.settings import SimulationSettings
from neurofusion.simulate.streams import subject_rng

#: Column names of the motion table.
PARAMETERS = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
#: Radius (mm) at which a rotation moves a point as far as a translation of the same size.
HEAD_RADIUS_MM = 50.0
#: Size of a jerk in units of ``motion_mm``.
SPIKE_SIZE = 4.0
#: Smoothness of the random walk (Gaussian sigma, volumes).
SMOOTHING_VOLUMES = 1.5


@dataclasses.dataclass(frozen=True)
class Motion:
    """Per-volume head pose of a run (dummy volumes included).

    Attributes
    ----------
    parameters : numpy.ndarray
        (n_dummy + n_volumes, 6) trans_x, trans_y, trans_z (mm), rot_x, rot_y, rot_z (deg).
    reference : int
        Index of the reference volume (first after the dummies), whose pose is identity.
    """

    parameters: np.ndarray
    reference: int

    def matrices(self) -> np.ndarray:
        """(n, 4, 4) head pose matrices ``M_n`` (see the module docstring)."""
        out = np.tile(np.eye(4), (len(self.parameters), 1, 1))
        for n, row in enumerate(self.parameters):
            out[n, :3, :3] = rotation_matrix(np.deg2rad(row[3:]))
            out[n, :3, 3] = row[:3]
        return out

    def max_displacement_mm(self, radius_mm: float) -> float:
        """Largest distance any point within ``radius_mm`` of the isocentre moves."""
        translation = np.linalg.norm(self.parameters[:, :3], axis=1)
        rotation = np.deg2rad(np.abs(self.parameters[:, 3:]).sum(axis=1)) * radius_mm
        return float((translation + rotation).max())


def draw_motion(settings: SimulationSettings, participant_id: str) -> Motion:
    """A subject's head motion from its ``motion`` stream.

    Each parameter is a Gaussian-smoothed random walk scaled to a standard deviation over the
    run of ``motion_mm`` (translations) or ``motion_mm`` at :data:`HEAD_RADIUS_MM`
    (rotations), plus ``motion_spikes`` single-volume jerks of :data:`SPIKE_SIZE` times that,
    in random directions, placed after the reference volume. The walk is then shifted so that
    the reference volume's pose is identity.
    """
    rng = subject_rng(settings.seed, participant_id, "motion")
    n_total = settings.dummy_scans + settings.n_volumes
    reference = settings.dummy_scans
    scale = np.r_[
        np.full(3, settings.motion_mm),
        np.full(3, np.rad2deg(settings.motion_mm / HEAD_RADIUS_MM)),
    ]
    walk = ndi.gaussian_filter1d(
        np.cumsum(rng.standard_normal((n_total, 6)), axis=0), SMOOTHING_VOLUMES, axis=0
    )
    walk -= walk.mean(axis=0)
    spread = walk.std(axis=0)
    walk *= scale / np.where(spread > 0, spread, 1.0)
    directions = rng.standard_normal((settings.motion_spikes, 6))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    candidates = np.arange(reference + 1, n_total)
    where = rng.choice(candidates, size=min(settings.motion_spikes, len(candidates)), replace=False)
    walk[where] += SPIKE_SIZE * np.sqrt(6) * directions[: len(where)] * scale
    walk -= walk[reference]
    return Motion(walk, reference)
