"""The group QC step: QC table, exclusion list, anatomical outliers, region flags, QC-FC."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from neurofusion.connectivity.atlas import atlas_image, atlas_table, region_centroids
from neurofusion.connectivity.matrices import read_relmat
from neurofusion.connectivity.settings import ConnectivitySettings
from neurofusion.fileio import atomic_path, write_json
from neurofusion.qc.anat_metrics import ANAT_METRICS, MAD_TO_SD
from neurofusion.qc.motion import exclusion_reasons, motion_summary
from neurofusion.qc.outputs import group_qc_outputs
from neurofusion.qc.qcfc import MIN_SUBJECTS, edge_correlations, qcfc_figure, qcfc_summary
from neurofusion.qc.settings import QCSettings

#: Numbers taken from the functional stage's QC JSON into the group table.
FUNC_QC_KEYS = ("tsnr_gm_median", "brain_mask_dice_template")
#: Fewest subjects with a metric for its robust z scores to mean anything.
MIN_SUBJECTS_FOR_OUTLIERS = 5
#: Columns of :func:`group_table`, in order.
GROUP_COLUMNS = (
    "participant_id",
    "group",
    "n_volumes",
    "mean_fd_mm",
    "max_fd_mm",
    "percent_fd_over_0.5mm",
    "fraction_high_fd",
    *FUNC_QC_KEYS,
    "n_flagged_regions",
    "flagged_regions",
    *ANAT_METRICS,
    "anat_outliers",
    "excluded",
    "reason",
)


def _write_tsv(path: Path, table: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(
            tmp, sep="\t", index=False, na_rep="n/a", float_format="%.6g", lineterminator="\n"
        )


def robust_z(values: np.ndarray) -> np.ndarray:
    """Robust z scores, ``0.6745 (x - median) / MAD`` (Iglewicz and Hoaglin 1993).

    When more than half the values are equal (MAD 0), the mean absolute deviation times
    1.2533 (its ratio to the SD of a Gaussian) stands in for the normalised MAD, as in
    IBM SPSS; when every value is equal, every z is 0. NaN stays NaN.

    Parameters
    ----------
    values : numpy.ndarray
        (n_subjects,) one metric.

    Returns
    -------
    numpy.ndarray
        (n_subjects,) z scores; all NaN with fewer than
        :data:`MIN_SUBJECTS_FOR_OUTLIERS` finite values.
    """
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    if len(finite) < MIN_SUBJECTS_FOR_OUTLIERS:
        return np.full(values.shape, np.nan)
    median = np.median(finite)
    scale = np.median(np.abs(finite - median)) / MAD_TO_SD
    if scale == 0:
        scale = 1.2533 * np.mean(np.abs(finite - median))
    if scale == 0:
        return np.where(np.isfinite(values), 0.0, np.nan)
    return (values - median) / scale


def anat_outliers(table: pd.DataFrame, threshold: float) -> list[list[str]]:
    """Each subject's anatomical metrics beyond ``threshold`` robust z, in the bad direction.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per subject with the columns of
        :data:`~neurofusion.qc.anat_metrics.ANAT_METRICS` (NaN: not measured).
    threshold : float
        The robust z beyond which a metric is an outlier.

    Returns
    -------
    list of list of str
        Per row, ``"<metric> z=<z>"`` for each outlying metric (empty: none).
    """
    flags: list[list[str]] = [[] for _ in range(len(table))]
    for metric, worse in ANAT_METRICS.items():
        z = robust_z(table[metric].to_numpy(float))
        bad = {"low": -z, "high": z, "both": np.abs(z)}[worse] > threshold
        for row in np.flatnonzero(bad):
            flags[row].append(f"{metric} z={z[row]:+.1f}")
    return flags


def group_table(
    subjects: Mapping[str, Mapping[str, Path]],
    groups: Mapping[str, str],
    settings: QCSettings,
) -> pd.DataFrame:
    """One row of QC numbers per subject, with anatomical outliers and the exclusion.

    Parameters
    ----------
    subjects : mapping
        ``{label: {"coverage": path, "confounds": path, "qc": path, "anat_qc": path}}``,
        each key optional: the connectivity coverage JSON, a confounds TSV with
        ``framewise_displacement``, the functional stage's QC JSON, the anatomical QC
        JSON (:func:`~neurofusion.qc.anat_metrics.write_anat_qc`).
    groups : mapping
        ``{label: group}``.
    settings : QCSettings
        Exclusion thresholds and what to do with anatomical outliers.

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`GROUP_COLUMNS`: motion, functional QC, flagged regions,
        the anatomical metrics, ``anat_outliers`` (comma-separated), ``excluded`` (bool)
        and ``reason``. Unknown numbers are NaN.
    """
    rows = []
    for label, files in subjects.items():
        row = {"participant_id": f"sub-{label}", "group": groups[label]}
        if files.get("confounds"):
            row.update(motion_summary(files["confounds"], label, settings.high_fd_mm))
        if files.get("qc"):
            func_qc = json.loads(Path(files["qc"]).read_text())
            row.update({key: func_qc.get(key) for key in FUNC_QC_KEYS})
        if files.get("coverage"):
            coverage = json.loads(Path(files["coverage"]).read_text())
            row["n_flagged_regions"] = coverage["n_flagged"]
            row["flagged_regions"] = ",".join(flag["region"] for flag in coverage["flagged"])
        if files.get("anat_qc"):
            anat_qc = json.loads(Path(files["anat_qc"]).read_text())
            row.update({key: anat_qc[key] for key in ANAT_METRICS})
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=list(GROUP_COLUMNS))
    outliers = anat_outliers(table, settings.anat_z_threshold)
    table["anat_outliers"] = [", ".join(flags) for flags in outliers]
    reasons = []
    for (_, row), flags in zip(table.iterrows(), outliers, strict=True):
        why = exclusion_reasons(row, settings)
        if flags and settings.anat_action == "exclude":
            why.append(
                f"anatomical QC outlier beyond robust z {settings.anat_z_threshold:g}: "
                + ", ".join(flags)
            )
        reasons.append(why)
    table["excluded"] = [bool(why) for why in reasons]
    table["reason"] = ["; ".join(why) for why in reasons]
    return table


def edge_distances(names: list[str], settings: ConnectivitySettings) -> np.ndarray:
    """Centroid distance (mm, MNI) of every region pair; NaN when a name is not an atlas
    region (time series from another pipeline with other names).

    Returns
    -------
    numpy.ndarray
        Shape (n_regions, n_regions).
    """
    table = atlas_table(settings)
    if not set(names) <= set(table["name"]):
        return np.full((len(names), len(names)), np.nan)
    values = table.set_index("name").loc[names, "index"].to_numpy()
    centroids = region_centroids(atlas_image(settings), values)
    return np.linalg.norm(centroids[:, None] - centroids[None], axis=-1)


def run_group_qc(
    subjects: Mapping[str, Mapping[str, Path]],
    groups: Mapping[str, str],
    output_dir: str | Path,
    qc_settings: QCSettings,
    connectivity: ConnectivitySettings,
) -> dict[str, Path]:
    """Write the group QC table and exclusions, and with function the region flags and QC-FC.

    QC-FC uses the retained subjects' Fisher-z matrices and leaves out every edge of a
    region flagged in any of them (its zeros would say nothing about motion). A cohort
    without functional data (no ``"fisherz"``) gets the table and the exclusions only.

    Parameters
    ----------
    subjects : mapping
        As :func:`group_table`, plus ``"fisherz"`` for subjects with function: the
        subject's Fisher-z matrix TSV.
    groups : mapping
        ``{label: group}``.
    output_dir : path
        ``output_dir`` of config.yaml.
    qc_settings : QCSettings
        Exclusion thresholds.
    connectivity : ConnectivitySettings
        Atlas (region centroids) and ``low_coverage`` (``drop`` marks regions dropped).

    Returns
    -------
    dict of str to Path
        :func:`~neurofusion.qc.outputs.group_qc_outputs`, all written.
    """
    functional = [label for label, files in subjects.items() if files.get("fisherz")]
    outputs = group_qc_outputs(output_dir, functional=bool(functional))
    table = group_table(subjects, groups, qc_settings)
    _write_tsv(outputs["table"], table)
    excluded = table.loc[table["excluded"], ["participant_id", "reason"]]
    _write_tsv(outputs["exclusions"], excluded)
    if functional:
        kept = set(table.loc[~table["excluded"], "participant_id"])
        retained = [label for label in functional if f"sub-{label}" in kept]
        _functional_qc(subjects, functional, retained, table, outputs, qc_settings, connectivity)
    return outputs


def _functional_qc(
    subjects: Mapping[str, Mapping[str, Path]],
    functional: list[str],
    retained: list[str],
    table: pd.DataFrame,
    outputs: Mapping[str, Path],
    qc_settings: QCSettings,
    connectivity: ConnectivitySettings,
) -> None:
    """Region flags and QC-FC of :func:`run_group_qc` over the retained functional subjects."""
    names = list(read_relmat(subjects[functional[0]]["fisherz"]).columns)
    flag_counts = dict.fromkeys(names, 0)
    for label in retained:
        for flag in json.loads(Path(subjects[label]["coverage"]).read_text())["flagged"]:
            flag_counts[flag["region"]] += 1
    flagged = np.array([flag_counts[n] > 0 for n in names])
    _write_tsv(
        outputs["regions"],
        pd.DataFrame(
            {
                "region": names,
                "n_subjects_flagged": [flag_counts[n] for n in names],
                "dropped": flagged if connectivity.low_coverage == "drop" else False,
            }
        ),
    )

    rows, cols = np.triu_indices(len(names), k=1)
    usable = ~(flagged[rows] | flagged[cols])
    motion = table.set_index("participant_id").loc[[f"sub-{s}" for s in retained], "mean_fd_mm"]
    motion = motion.to_numpy(float)
    r = p = np.full(len(rows), np.nan)
    if len(retained) >= MIN_SUBJECTS and np.isfinite(motion).all():
        fc = np.stack(
            [read_relmat(subjects[label]["fisherz"]).to_numpy()[rows, cols] for label in retained]
        )
        r_used, p_used = edge_correlations(fc[:, usable], motion)
        r, p = r.copy(), p.copy()
        r[usable], p[usable] = r_used, p_used
    distance = edge_distances(names, connectivity)[rows, cols]
    _write_tsv(
        outputs["qcfc"],
        pd.DataFrame(
            {
                "region_a": np.array(names)[rows],
                "region_b": np.array(names)[cols],
                "distance_mm": distance,
                "r": r,
                "p": p,
            }
        ),
    )
    summary = qcfc_summary(r, p, distance)
    write_json(
        outputs["qcfc_json"],
        {
            **summary,
            "n_subjects": len(retained),
            "n_edges_total": len(rows),
            "n_edges_left_out_flagged": int((~usable).sum()),
            "motion_measure": "mean framewise displacement (Power), mm",
            "connectivity_measure": "Fisher z",
            "distance_dependence_method": "Spearman rank correlation with centroid distance",
            "qc_settings": dataclasses.asdict(qc_settings),
        },
    )
    with atomic_path(outputs["qcfc_png"]) as tmp:
        qcfc_figure(r, distance, summary, tmp)
