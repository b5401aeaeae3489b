"""The group QC step: QC table, exclusion list, cohort-wide region flags, QC-FC."""

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
from neurofusion.qc.motion import QCSettings, exclusion_reasons, motion_summary
from neurofusion.qc.outputs import group_qc_outputs
from neurofusion.qc.qcfc import MIN_SUBJECTS, edge_correlations, qcfc_figure, qcfc_summary

#: Numbers taken from the functional stage's QC JSON into the group table.
FUNC_QC_KEYS = ("tsnr_gm_median", "brain_mask_dice_template")


def _write_tsv(path: Path, table: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(
            tmp, sep="\t", index=False, na_rep="n/a", float_format="%.6g", lineterminator="\n"
        )


def group_table(
    subjects: Mapping[str, Mapping[str, Path]],
    groups: Mapping[str, str],
    settings: QCSettings,
) -> pd.DataFrame:
    """One row of QC numbers per subject, with the exclusion decision.

    Parameters
    ----------
    subjects : mapping
        ``{label: {"coverage": path, "confounds": path (optional), "qc": path
        (optional)}}``: the connectivity coverage JSON, a confounds TSV with
        ``framewise_displacement``, the functional stage's QC JSON.
    groups : mapping
        ``{label: group}``.
    settings : QCSettings
        Exclusion thresholds.

    Returns
    -------
    pandas.DataFrame
        ``participant_id``, ``group``, ``n_volumes``, ``mean_fd_mm``, ``max_fd_mm``,
        ``percent_fd_over_0.5mm``, ``fraction_high_fd``, ``tsnr_gm_median``,
        ``brain_mask_dice_template``, ``n_flagged_regions``, ``flagged_regions``
        (comma-separated), ``excluded`` (bool), ``reason``. Unknown numbers are NaN.
    """
    rows = []
    for label, files in subjects.items():
        row = {"participant_id": f"sub-{label}", "group": groups[label]}
        if files.get("confounds"):
            row.update(motion_summary(files["confounds"], label, settings.high_fd_mm))
        if files.get("qc"):
            func_qc = json.loads(Path(files["qc"]).read_text())
            row.update({key: func_qc.get(key) for key in FUNC_QC_KEYS})
        coverage = json.loads(Path(files["coverage"]).read_text())
        row["n_flagged_regions"] = coverage["n_flagged"]
        row["flagged_regions"] = ",".join(flag["region"] for flag in coverage["flagged"])
        reasons = exclusion_reasons(row, settings)
        row["excluded"] = bool(reasons)
        row["reason"] = "; ".join(reasons)
        rows.append(row)
    columns = [
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
        "excluded",
        "reason",
    ]
    return pd.DataFrame(rows).reindex(columns=columns)


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
    """Write the group QC table, exclusions, region flags and QC-FC.

    QC-FC uses the retained subjects' Fisher-z matrices and leaves out every edge of a
    region flagged in any of them (its zeros would say nothing about motion).

    Parameters
    ----------
    subjects : mapping
        As :func:`group_table`, plus ``"fisherz"``: the subject's Fisher-z matrix TSV.
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
    outputs = group_qc_outputs(output_dir)
    table = group_table(subjects, groups, qc_settings)
    _write_tsv(outputs["table"], table)
    excluded = table.loc[table["excluded"], ["participant_id", "reason"]]
    _write_tsv(outputs["exclusions"], excluded)

    retained = [label for label, out in zip(subjects, table["excluded"], strict=True) if not out]
    first = read_relmat(next(iter(subjects.values()))["fisherz"])
    names = list(first.columns)
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
    return outputs
