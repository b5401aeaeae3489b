"""A cohort of model-stage inputs with the simulator's planted effects, in seconds.

Running the simulator's full chain (DICOM, conversion, preprocessing, connectivity) takes
minutes per subject; the tests and benchmarks of the models stage need many subjects
quickly. This writes the files the models stage reads, under their derivative names,
from the simulator's own ingredients, already in MNI space (no registration error):

* T1 and GM probability on an MNI grid (the template's at ``resolution_mm``): the template's
  tissue priors, grey matter scaled per AAL region by the simulator's subject factors
  (:func:`gm_factor`: the first draws of
  :func:`~neurofusion.simulate.anatomy.draw_anatomy`, so patients lose grey matter in the
  pallidum and precentral gyrus), MPRAGE contrast and Gaussian noise;
* region time series: the simulator's true region signals
  (:func:`~neurofusion.simulate.function.region_signals`, with the patients' stronger
  default-mode <-> ventral-striatum coupling) at every TR, with their Fisher-z matrix;
* fALFF and ReHo maps (3 mm grid): grey matter plus noise, with no group effect.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from neurofusion.connectivity.outputs import connectivity_outputs
from neurofusion.fileio import atomic_path
from neurofusion.preprocessing.anat_outputs import anat_outputs
from neurofusion.preprocessing.func_outputs import func_outputs
from neurofusion.simulate import cohort_participants, settings_from_config
from neurofusion.simulate.anatomy import (
    GM_REGION_SD,
    GM_TARGET_REGIONS,
    T1_INTENSITY,
    T1_NOISE,
    T1_SCALE,
    region_index,
)
from neurofusion.simulate.function import region_names, region_signals
from neurofusion.simulate.settings import PATIENT_GROUP, SimulationSettings
from neurofusion.simulate.streams import subject_rng
from neurofusion.templates import mni_brain_mask, mni_tissue_priors
from neurofusion.training.features import aal_on_grid, resample, target_grid


def gm_factor(settings: SimulationSettings, participant_id: str, group: str) -> np.ndarray:
    """(117,) grey-matter scaling per AAL label, equal to ``draw_anatomy(...).gm_factor``.

    The same stream and draws as the simulator, without the deformation field that makes
    :func:`~neurofusion.simulate.anatomy.draw_anatomy` take seconds.
    """
    rng = subject_rng(settings.seed, participant_id, "anatomy")
    factor = np.ones(117, dtype=np.float32)
    factor[1:] = 1.0 + GM_REGION_SD * rng.standard_normal(116)
    if group == PATIENT_GROUP:
        factor[region_index(GM_TARGET_REGIONS)] -= GM_REGION_SD * settings.effect_size
    return np.clip(factor, 0.3, 1.7)


def _save(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        nib.save(nib.Nifti1Image(data, affine), str(tmp))


def write_synthetic_cohort(
    root: str | Path,
    n_per_group: int | dict = 20,
    effect_size: float = 2.0,
    connectivity_effect_size: float | None = None,
    seed: int = 0,
    n_volumes: int = 120,
    resolution_mm: int = 2,
    missing: dict[str, str] | None = None,
) -> pd.DataFrame:
    """Write participants, derivatives and an empty QC exclusion list under ``root``.

    Parameters
    ----------
    root : path
        Plays the role of ``output_dir``: ``rawdata/participants.tsv``,
        ``derivatives/sub-*/...`` and ``qc/exclusions.tsv`` are written.
    n_per_group : int or dict
        As ``simulate.n_per_group``.
    effect_size, connectivity_effect_size : float
        The simulator's planted effects (Cohen's d); 0 = none.
    seed : int
        Cohort seed.
    n_volumes : int
        Time points of each region time series (TR 2 s).
    resolution_mm : int
        Voxel size of the "MNI 2 mm" images (2 is the pipeline's; larger is faster).
    missing : dict, optional
        ``{participant_id: "T1w" or "bold"}``: the modality whose files that subject does
        not get (as a subject scanned without it).

    Returns
    -------
    pandas.DataFrame
        The participants table.
    """
    root = Path(root)
    settings = settings_from_config(
        {
            "preset": "tiny",
            "n_per_group": n_per_group,
            "effect_size": effect_size,
            "connectivity_effect_size": connectivity_effect_size,
            "seed": seed,
            "n_volumes": n_volumes,
            "dummy_scans": 0,
        }
    )
    table = cohort_participants(settings)
    with atomic_path(root / "rawdata" / "participants.tsv") as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    with atomic_path(root / "qc" / "exclusions.tsv") as tmp:
        pd.DataFrame({"participant_id": [], "reason": []}).to_csv(tmp, sep="\t", index=False)
    priors = mni_tissue_priors(resolution_mm)
    affine = priors["GM"].affine
    gm0, wm, csf = (np.asarray(priors[k].dataobj, np.float32) for k in ("GM", "WM", "CSF"))
    mask = np.asarray(mni_brain_mask(resolution_mm).dataobj)
    labels = aal_on_grid(affine, gm0.shape)
    func_affine, func_shape = target_grid(affine, gm0.shape, 3)
    names = list(region_names())
    deriv = root / "derivatives"
    for pid, group in zip(table["participant_id"], table["group"], strict=True):
        factor = gm_factor(settings, pid, group)
        gm = np.minimum(gm0 * factor[labels], gm0 + csf)
        fractions = np.stack([gm, wm, csf + gm0 - gm])
        rng = subject_rng(settings.seed, pid, "t1_noise")
        t1 = np.tensordot(T1_INTENSITY[:3], fractions, axes=1)
        t1 = (t1 + T1_NOISE * rng.standard_normal(t1.shape, dtype=np.float32)) * T1_SCALE
        absent = (missing or {}).get(pid)
        if absent != "T1w":
            anat = anat_outputs(deriv, pid)
            _save(anat["mni_t1w"], t1.astype(np.float32), affine)
            _save(anat["mni_probseg_GM"], gm.astype(np.float32), affine)
            _save(anat["mni_mask"], mask.astype(np.uint8), affine)
        if absent == "bold":
            continue
        signals = region_signals(settings, pid, group)
        series = signals.at(np.arange(n_volumes) * settings.tr_s)
        fisherz = np.arctanh(np.clip(np.corrcoef(series, rowvar=False), -0.999999, 0.999999))
        np.fill_diagonal(fisherz, 0.0)
        conn = connectivity_outputs(deriv, pid)
        with atomic_path(conn["timeseries"]) as tmp:
            pd.DataFrame(series, columns=names).to_csv(tmp, sep="\t", index=False)
        with atomic_path(conn["fisherz"]) as tmp:
            matrix = pd.DataFrame(fisherz, index=pd.Index(names, name="region"), columns=names)
            matrix.to_csv(tmp, sep="\t")
        if absent == "T1w":
            continue
        func = func_outputs(deriv, pid)
        for key in ("falff", "reho"):
            noise = rng.standard_normal(func_shape, dtype=np.float32)
            value = resample(gm, affine, func_affine, func_shape) + 0.1 * noise
            _save(func[key], value.astype(np.float32), func_affine)
    return table
