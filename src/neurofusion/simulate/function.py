"""Region time courses with network structure, haemodynamics and physiological noise.

Neural activity of the 116 AAL regions is a factor model: a global factor, one factor per
network (:data:`NETWORKS`), a default-mode / fronto-parietal anticorrelation factor and a
default-mode <-> ventral-striatum coupling factor, plus region-specific activity. Every
factor and region signal is independent Gaussian noise with the same band-limited spectrum
(0.01-0.08 Hz, the band resting-state analyses keep), so the correlation of any two
regions at every lag is fixed by the loadings (:meth:`RegionSignals.model`). Convolution
with the SPM canonical haemodynamic response gives the BOLD time courses; being linear and
the same for every region, it leaves the correlation structure intact.

Patients' coupling factor loads more strongly (``connectivity_effect_size`` times
:data:`COUPLING_UNIT`), which raises every default-mode <-> ventral-striatum correlation.
The network loadings of both sets are lowered by the same amount, so correlations within
the default mode and within the ventral striatum stay as they were (those between the
ventral striatum and the other subcortical regions drop slightly).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import signal, stats

from neurofusion import atlas
from neurofusion.simulate.settings import PATIENT_GROUP, SimulationSettings
from neurofusion.simulate.streams import subject_rng

#: AAL regions (hemisphere suffix removed; ``*`` = prefix match) of each network.
NETWORKS: dict[str, tuple[str, ...]] = {
    "default_mode": (
        "Frontal_Sup_Medial",
        "Frontal_Med_Orb",
        "Cingulum_Ant",
        "Cingulum_Post",
        "Precuneus",
        "Angular",
        "ParaHippocampal",
        "Hippocampus",
        "Temporal_Mid",
    ),
    "salience": ("Insula", "Cingulum_Mid", "Frontal_Inf_Orb", "Temporal_Pole_Sup"),
    "sensorimotor": (
        "Precentral",
        "Postcentral",
        "Supp_Motor_Area",
        "Paracentral_Lobule",
        "Rolandic_Oper",
        "Heschl",
        "Temporal_Sup",
    ),
    "visual": (
        "Calcarine",
        "Cuneus",
        "Lingual",
        "Occipital_Sup",
        "Occipital_Mid",
        "Occipital_Inf",
        "Fusiform",
    ),
    "fronto_parietal": (
        "Frontal_Sup",
        "Frontal_Mid",
        "Frontal_Sup_Orb",
        "Frontal_Mid_Orb",
        "Frontal_Inf_Oper",
        "Frontal_Inf_Tri",
        "Parietal_Sup",
        "Parietal_Inf",
        "SupraMarginal",
    ),
    "subcortical": ("Caudate", "Putamen", "Pallidum", "Thalamus", "Amygdala"),
    "cerebellar": ("Cerebelum_*", "Vermis_*"),
}
#: AAL has no ventral-striatum label; the nucleus accumbens lies at the ventral junction
#: of the AAL caudate and putamen, which stand for it.
VENTRAL_STRIATUM = ("Caudate", "Putamen")
#: Variance (squared loading) of the global factor in every region.
GLOBAL_VARIANCE = 0.08
#: Mean variance of a network factor in its regions (scaled by U(0.8, 1.2) per subject).
NETWORK_VARIANCE = 0.55
#: Default-mode (+) / fronto-parietal (-) anticorrelation factor variance.
ANTICORRELATION_VARIANCE = 0.12
#: Coupling (added default-mode <-> ventral-striatum correlation) of controls: mean, SD.
COUPLING_MEAN = 0.10
COUPLING_SD = 0.05
#: Coupling added to patients per unit of ``connectivity_effect_size``: the between-subject
#: SD of the observed mean default-mode <-> ventral-striatum Fisher z at a 130-volume run
#: (population SD and sampling noise), so that the effect size is about the Cohen's d a
#: study of the true time courses would see. Calibrated at 130 volumes and kept for the
#: demo's 100: the sampling noise grows by about sqrt(130 / 100), so the demo's observed d
#: is a little below the nominal one.
COUPLING_UNIT = 0.15
#: Upper bound of the coupling (the smallest network variance, 0.8 * NETWORK_VARIANCE).
COUPLING_MAX = 0.44
#: Band of the neural fluctuations (Hz).
BAND_HZ = (0.01, 0.08)
#: Steps of the region signals' time grid per TR.
TIME_STEPS_PER_TR = 16
#: Seconds simulated before the first volume so the haemodynamics are in steady state.
WARMUP_S = 60.0
#: Relative amplitude (fraction of the tissue's signal) of respiration, cardiac pulsation
#: and slow drift in GM, WM and CSF (rows), strongest in CSF and WM.
PHYSIO_AMPLITUDE = np.array(
    [[0.002, 0.002, 0.003], [0.004, 0.002, 0.006], [0.015, 0.02, 0.01]], dtype=np.float32
)


def region_names() -> tuple[str, ...]:
    """The 116 AAL region names in label order."""
    return tuple(name for _, name in atlas.aal_labels())


def members(patterns: tuple[str, ...]) -> np.ndarray:
    """Boolean (116,) mask of the AAL regions matching ``patterns`` (either hemisphere)."""
    bases = [name[:-2] if name[-2:] in ("_L", "_R") else name for name in region_names()]
    return np.array(
        [
            any(base.startswith(p[:-1]) if p.endswith("*") else base == p for p in patterns)
            for base in bases
        ]
    )


@dataclasses.dataclass(frozen=True)
class RegionSignals:
    """True BOLD time courses of the 116 AAL regions on a fine time grid.

    Attributes
    ----------
    dt : float
        Time step (s); between steps the signals are defined by linear interpolation.
    bold : numpy.ndarray
        (n_steps, 116) float32, unit variance; row i is time i * dt after the start of the
        first (dummy) volume.
    loadings : numpy.ndarray
        (116, n_factors) factor loadings.
    unique : numpy.ndarray
        (116,) region-specific variance; each region's total variance is 1.
    coupling : float
        Default-mode <-> ventral-striatum coupling of this subject.
    """

    dt: float
    bold: np.ndarray
    loadings: np.ndarray
    unique: np.ndarray
    coupling: float

    def model(self) -> np.ndarray:
        """(116, 116) population correlation implied by the loadings."""
        return self.loadings @ self.loadings.T + np.diag(self.unique)

    def at(self, times_s: np.ndarray) -> np.ndarray:
        """Region signals at the given times (s), linearly interpolated; (len, 116) float32.

        The signals are band-limited below 0.1 Hz, so the interpolation between steps of
        ``dt`` changes them by less than 0.1 % of their SD.
        """
        position = np.asarray(times_s, dtype=float) / self.dt
        step = np.minimum(np.floor(position).astype(int), len(self.bold) - 2)
        weight = (position - step).astype(np.float32)[:, None]
        return self.bold[step] + weight * (self.bold[step + 1] - self.bold[step])


def loadings_for(rng: np.random.Generator, coupling: float) -> tuple[np.ndarray, np.ndarray]:
    """Factor loadings and unique variances of one subject.

    Parameters
    ----------
    rng : numpy.random.Generator
        The subject's ``function`` stream (network strengths).
    coupling : float
        Default-mode <-> ventral-striatum coupling (added correlation).

    Returns
    -------
    loadings : numpy.ndarray
        (116, 3 + n_networks): global, anticorrelation, coupling, then one per network.
    unique : numpy.ndarray
        (116,) 1 - row sums of squared loadings.
    """
    dmn = members(NETWORKS["default_mode"])
    striatum = members(VENTRAL_STRIATUM)
    variance = np.zeros((116, 3 + len(NETWORKS)))
    variance[:, 0] = GLOBAL_VARIANCE
    variance[dmn, 1] = ANTICORRELATION_VARIANCE
    variance[members(NETWORKS["fronto_parietal"]), 1] = ANTICORRELATION_VARIANCE
    variance[dmn | striatum, 2] = coupling
    strengths = NETWORK_VARIANCE * rng.uniform(0.8, 1.2, size=len(NETWORKS))
    for column, (patterns, strength) in enumerate(
        zip(NETWORKS.values(), strengths, strict=True), start=3
    ):
        variance[members(patterns), column] = strength
    variance[dmn | striatum, 3:] = np.maximum(variance[dmn | striatum, 3:] - coupling, 0.0)
    loadings = np.sqrt(variance)
    loadings[members(NETWORKS["fronto_parietal"]), 1] *= -1.0
    unique = 1.0 - (loadings**2).sum(axis=1)
    return loadings, unique


def hrf(dt: float, length_s: float = 32.0) -> np.ndarray:
    """SPM canonical haemodynamic response (peak 6 s, undershoot 16 s, ratio 1/6); (n,)."""
    t = np.arange(0.0, length_s, dt)
    response = stats.gamma.pdf(t, 6.0) - stats.gamma.pdf(t, 16.0) / 6.0
    return response / response.sum()


def subject_coupling(settings: SimulationSettings, rng: np.random.Generator, group: str):
    """Coupling of one subject: a control's draw, plus the patient effect."""
    coupling = COUPLING_MEAN + COUPLING_SD * rng.standard_normal()
    if group == PATIENT_GROUP:
        coupling += COUPLING_UNIT * settings.connectivity_effect_size
    return float(np.clip(coupling, 0.0, COUPLING_MAX))


def region_signals(settings: SimulationSettings, participant_id: str, group: str):
    """Draw a subject's true region BOLD time courses (:class:`RegionSignals`).

    The time step is 1 / :data:`TIME_STEPS_PER_TR` of the TR; the signals cover the run and
    one more TR.
    """
    rng = subject_rng(settings.seed, participant_id, "function")
    coupling = subject_coupling(settings, rng, group)
    loadings, unique = loadings_for(rng, coupling)
    dt = settings.tr_s / TIME_STEPS_PER_TR
    n_run = (settings.dummy_scans + settings.n_volumes + 1) * TIME_STEPS_PER_TR
    n_warm = round(WARMUP_S / dt)
    n_total = n_warm + n_run
    sources = rng.standard_normal((n_total, loadings.shape[1] + 116))
    spectrum = np.fft.rfft(sources, axis=0)
    freqs = np.fft.rfftfreq(n_total, dt)
    spectrum[(freqs < BAND_HZ[0]) | (freqs > BAND_HZ[1])] = 0.0
    band = np.fft.irfft(spectrum, n=n_total, axis=0)
    band /= band.std(axis=0)
    neural = band[:, : loadings.shape[1]] @ loadings.T + band[:, loadings.shape[1] :] * np.sqrt(
        unique
    )
    bold = signal.fftconvolve(neural, hrf(dt)[:, None], axes=0)[n_warm:n_total]
    bold /= bold.std(axis=0)
    return RegionSignals(dt, bold.astype(np.float32), loadings, unique, coupling)


@dataclasses.dataclass(frozen=True)
class Physiology:
    """Physiological noise and scanner drift of one run.

    Attributes
    ----------
    respiration_hz, cardiac_hz : float
        Breathing and heart rate; sampled every TR they alias to lower frequencies.
    phases : numpy.ndarray
        (6,) phases (rad) of respiration, its harmonic, cardiac, its harmonic and the two
        slow-drift cosines.
    drift_slope : float
        Scanner signal drift over the run (fraction, linear).
    duration_s : float
        Run length including dummy scans.
    """

    respiration_hz: float
    cardiac_hz: float
    phases: np.ndarray
    drift_slope: float
    duration_s: float

    def modulation(self, times_s: np.ndarray) -> np.ndarray:
        """Relative signal change of GM, WM and CSF at the given times; (3, len) float32."""
        t = np.asarray(times_s, dtype=float)
        p = self.phases
        two_pi = 2 * np.pi
        respiration = np.sin(two_pi * self.respiration_hz * t + p[0]) + 0.3 * np.sin(
            2 * two_pi * self.respiration_hz * t + p[1]
        )
        cardiac = np.sin(two_pi * self.cardiac_hz * t + p[2]) + 0.4 * np.sin(
            2 * two_pi * self.cardiac_hz * t + p[3]
        )
        slow = np.cos(np.pi * t / self.duration_s + p[4]) + 0.5 * np.cos(
            3 * np.pi * t / self.duration_s + p[5]
        )
        return (PHYSIO_AMPLITUDE @ np.stack([respiration, cardiac, slow])).astype(np.float32)

    def drift(self, times_s: np.ndarray) -> np.ndarray:
        """Global multiplicative scanner drift at the given times; (len,)."""
        return 1.0 + self.drift_slope * np.asarray(times_s) / self.duration_s


def draw_physiology(settings: SimulationSettings, participant_id: str) -> Physiology:
    """A subject's breathing, heart rate and drift from its ``physiology`` stream."""
    rng = subject_rng(settings.seed, participant_id, "physiology")
    return Physiology(
        respiration_hz=float(rng.uniform(0.2, 0.33)),
        cardiac_hz=float(rng.uniform(0.9, 1.3)),
        phases=rng.uniform(0, 2 * np.pi, size=6),
        drift_slope=float(rng.uniform(-0.01, 0.01)),
        duration_s=(settings.dummy_scans + settings.n_volumes) * settings.tr_s,
    )
