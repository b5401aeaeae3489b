"""Anatomical image quality metrics (MRIQC's definitions) of one preprocessed T1w.

The metrics are MRIQC's structural IQMs (Esteban et al. 2017, PLoS One 12(9):e0184661;
``mriqc.qc.anatomical``), computed from this pipeline's own outputs instead of FSL FAST's:
the bias-corrected T1w (``desc-preproc_T1w``, MRIQC's ``in_noinu``), our GM/WM/CSF
probability maps (MRIQC's partial-volume maps) and a head mask drawn by the rule of the
anatomical workflow's N4 step. We write our own rather than call MRIQC, which needs FSL,
AFNI and templateflow downloads; the formulas are MRIQC's, line for line:

- ``snr_gm``, ``snr_wm``: ``median / (sd * sqrt(n / (n - 1)))`` in the tissue, with the
  tissue's probability as weights (MRIQC's ``snr`` on ``summary_stats``). Higher is better.
- ``cnr``: ``|median_WM - median_GM| / sqrt(sd_air^2 + sd_GM^2 + sd_WM^2)`` (Magnotta and
  Friedman 2006, J Digit Imaging 19:140). Higher is better.
- ``cjv``: ``(mad_WM + mad_GM) / |median_WM - median_GM|`` (Ganzetti et al. 2016, Front
  Neuroinform 10:10), MADs normalised to the SD of a Gaussian. Lower is better.
- ``efc``: Shannon entropy of the voxel intensities normalised by its maximum (Atkinson et
  al. 1997, IEEE TMI 16:903); ghosting and blur spread the energy and raise it. Lower is
  better.
- ``fber``: ``median(head^2) / median(air^2)`` (Shehzad et al. 2015, the QAP). Higher is
  better; -1 when the air holds no signal (a skull-stripped or masked image).

One departure, for want of MRIQC's template-space "hat" mask: the air is every voxel
outside the head mask dilated by :data:`AIR_MARGIN_MM` that is not exactly 0. An image
whose background was zeroed (by the scanner or an anonymiser) has no air: its FBER is -1
and the air adds nothing to the CNR's noise, as in MRIQC. EFC runs over every voxel (the
T1w is only reoriented, so MRIQC's mask of voxels emptied by rotation is empty).

Beside them, three checks of the pipeline's own outputs: the brain volume, the Pearson
correlation of the T1w in MNI with the template, and the Dice of the MNI brain mask with
the template's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi

from neurofusion import templates
from neurofusion.fileio import write_json
from neurofusion.preprocessing.anat_outputs import anat_outputs, subject_label
from neurofusion.preprocessing.anat_quality import dice, mask_litres, template_correlation
from neurofusion.preprocessing.image_interfaces import head_mask
from neurofusion.provenance import provenance_record

#: Air starts this far (mm) outside the head mask, past the skin's partial volumes.
AIR_MARGIN_MM = 4.0
#: MAD of a Gaussian is this fraction of its SD (statsmodels' ``mad`` divides by it).
MAD_TO_SD = 0.6744897501960817
#: Every metric of :func:`anat_qc` and the direction in which it gets worse: ``low`` (a
#: low value is poor quality), ``high``, or ``both`` (an unusual value either way).
ANAT_METRICS = {
    "cnr": "low",
    "cjv": "high",
    "efc": "high",
    "fber": "low",
    "snr_gm": "low",
    "snr_wm": "low",
    "brain_volume_l": "both",
    "template_r": "low",
    "mni_mask_dice": "low",
}


def weighted_stats(values: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """MRIQC's ``summary_stats`` of one tissue: weighted by its probability.

    Parameters
    ----------
    values : numpy.ndarray
        (n,) intensities.
    weights : numpy.ndarray
        (n,) tissue probabilities in [0, 1].

    Returns
    -------
    dict
        ``median`` (weighted), ``sd`` (weighted, population), ``mad`` (normalised MAD of
        the voxels above half the largest weight, about the weighted median) and ``n``
        (sum of the weights: the tissue's volume in voxels).
    """
    keep = weights > 0
    values, weights = values[keep].astype(float), weights[keep].astype(float)
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    median = float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])
    mean = np.average(values, weights=weights)
    sd = float(np.sqrt(np.average((values - mean) ** 2, weights=weights)))
    core = values[weights > 0.5 * weights.max()]
    mad = float(np.median(np.abs(core - median)) / MAD_TO_SD)
    return {"median": median, "sd": sd, "mad": mad, "n": float(weights.sum())}


def snr(stats: Mapping[str, float]) -> float:
    """MRIQC's ``snr``: ``median / (sd * sqrt(n / (n - 1)))`` of :func:`weighted_stats`."""
    n = stats["n"]
    return float(stats["median"] / (stats["sd"] * np.sqrt(n / (n - 1))))


def cnr(wm: Mapping[str, float], gm: Mapping[str, float], air_sd: float) -> float:
    """MRIQC's ``cnr``: ``|median_WM - median_GM| / sqrt(sd_air^2 + sd_GM^2 + sd_WM^2)``."""
    return float(
        abs(wm["median"] - gm["median"]) / np.sqrt(air_sd**2 + gm["sd"] ** 2 + wm["sd"] ** 2)
    )


def cjv(wm: Mapping[str, float], gm: Mapping[str, float]) -> float:
    """MRIQC's ``cjv``: ``(mad_WM + mad_GM) / |median_WM - median_GM|``."""
    return float((wm["mad"] + gm["mad"]) / abs(wm["median"] - gm["median"]))


def efc(data: np.ndarray) -> float:
    """MRIQC's ``efc``: the entropy focus criterion of every voxel of ``data``.

    ``(1 / E_max) * sum(x / b * ln(x / b))`` with ``b = sqrt(sum(x^2))`` and ``E_max =
    N / sqrt(N) * ln(1 / sqrt(N))``, the value of a flat image of ``N`` voxels: 1 means
    uniform energy, 0 all of it in one voxel.
    """
    x = data.ravel().astype(float)
    n = x.size
    efc_max = n * (1.0 / np.sqrt(n)) * np.log(1.0 / np.sqrt(n))
    b_max = np.sqrt((x**2).sum())
    return float((1.0 / efc_max) * np.sum((x / b_max) * np.log((x + 1e-16) / b_max)))


def fber(data: np.ndarray, head: np.ndarray, air: np.ndarray) -> float:
    """MRIQC's ``fber``: ``median(head^2) / median(air^2)``; -1 when the air is empty."""
    background = np.median(data[air] ** 2) if air.any() else 0.0
    if background < 1e-3:
        return -1.0
    return float(np.median(data[head] ** 2) / background)


def image_quality(
    data: np.ndarray, zooms_mm, probseg: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """CNR, CJV, EFC, FBER and the GM and WM SNR of a bias-corrected T1w.

    Parameters
    ----------
    data : numpy.ndarray
        (ni, nj, nk) bias-corrected T1w, head not stripped; negatives are set to 0.
    zooms_mm : sequence of float
        Voxel size (mm).
    probseg : mapping
        ``{"GM": array, "WM": array}``: tissue probabilities on the same grid.

    Returns
    -------
    dict of str to float
        ``cnr``, ``cjv``, ``efc``, ``fber``, ``snr_gm``, ``snr_wm`` (dimensionless).
    """
    data = np.clip(np.asarray(data, dtype=np.float32), 0, None)
    head = head_mask(data, zooms_mm)
    margin = np.maximum(np.rint(AIR_MARGIN_MM / np.asarray(zooms_mm, dtype=float)), 1)
    grown = ndi.binary_dilation(head, np.ones(tuple(2 * margin.astype(int) + 1), bool))
    air = ~grown & (data != 0)
    gm, wm = (weighted_stats(data.ravel(), probseg[t].ravel()) for t in ("GM", "WM"))
    air_sd = float(data[air].std()) if air.any() else 0.0
    return {
        "cnr": cnr(wm, gm, air_sd),
        "cjv": cjv(wm, gm),
        "efc": efc(data),
        "fber": fber(data, head, air),
        "snr_gm": snr(gm),
        "snr_wm": snr(wm),
    }


def anat_qc(outputs: Mapping[str, str | Path]) -> dict[str, Any]:
    """Every metric of :data:`ANAT_METRICS` of one subject's anatomical outputs.

    Parameters
    ----------
    outputs : mapping
        :func:`~neurofusion.preprocessing.anat_outputs.anat_outputs` of the subject (at
        least ``t1w_preproc``, ``probseg_GM``, ``probseg_WM``, ``brain_mask``,
        ``mni_t1w`` and ``mni_mask``).

    Returns
    -------
    dict
        The metrics: image quality (:func:`image_quality`), ``brain_volume_l`` (litres),
        ``template_r`` (Pearson r with the template inside its brain) and
        ``mni_mask_dice`` (Dice of the MNI brain mask with the template's, 2 mm grid).
    """
    t1w = nib.load(outputs["t1w_preproc"])
    probseg = {t: nib.load(outputs[f"probseg_{t}"]).get_fdata() for t in ("GM", "WM")}
    metrics = image_quality(t1w.get_fdata(dtype=np.float32), t1w.header.get_zooms()[:3], probseg)
    mni_mask = np.asarray(nib.load(outputs["mni_mask"]).dataobj) > 0
    template_mask = np.asarray(templates.mni_brain_mask(2).dataobj) > 0
    metrics["brain_volume_l"] = float(mask_litres(outputs["brain_mask"]))
    metrics["template_r"] = float(template_correlation(outputs["mni_t1w"]))
    metrics["mni_mask_dice"] = float(dice(mni_mask, template_mask))
    return metrics


#: Keys of :func:`~neurofusion.preprocessing.anat_outputs.anat_outputs` that
#: :func:`anat_qc` reads.
ANAT_QC_INPUTS = ("t1w_preproc", "probseg_GM", "probseg_WM", "brain_mask", "mni_t1w", "mni_mask")


def write_anat_qc(subject: str, deriv_root: str | Path, output: str | Path) -> Path:
    """Measure one subject's anatomical QC and write it as JSON.

    Parameters
    ----------
    subject : str
        Participant label, with or without ``sub-``.
    deriv_root : path
        The derivatives root holding the subject's anatomical outputs.
    output : path
        ``sub-<id>_desc-anat_qc.json`` (:func:`~neurofusion.qc.outputs.anat_qc_path`).

    Returns
    -------
    Path
        ``output``: ``participant_id``, every metric of :data:`ANAT_METRICS`, and
        ``provenance`` (input checksums, software versions, the air margin).
    """
    outputs = anat_outputs(deriv_root, subject)
    record = {"participant_id": f"sub-{subject_label(subject)}", **anat_qc(outputs)}
    record["provenance"] = provenance_record(
        "anat_qc",
        inputs=[outputs[key] for key in ANAT_QC_INPUTS],
        parameters={"air_margin_mm": AIR_MARGIN_MM, "definitions": "MRIQC structural IQMs"},
    )
    return write_json(output, record)
