"""One subject's connectivity step: region time series, coverage, matrices, figure.

Two entries give the same outputs (:func:`~neurofusion.connectivity.outputs.
connectivity_outputs`): :func:`run_connectome` from the clean BOLD and the atlas on its
grid, :func:`run_connectome_from_timeseries` from region time series another pipeline
wrote (``input.kind: derivatives``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from neurofusion.connectivity.atlas import atlas_table, read_atlas
from neurofusion.connectivity.coverage import enforce_policy, flag_regions
from neurofusion.connectivity.derivatives import load_derivative_timeseries
from neurofusion.connectivity.figures import matrix_figure
from neurofusion.connectivity.matrices import R_MAX, fisher_z, pearson, write_relmat
from neurofusion.connectivity.outputs import atlas_label, connectivity_outputs
from neurofusion.connectivity.settings import ConnectivitySettings
from neurofusion.connectivity.timeseries import region_signals
from neurofusion.errors import InputError
from neurofusion.fileio import atomic_path, write_json
from neurofusion.preprocessing.anat_outputs import subject_label
from neurofusion.provenance import write_provenance


def run_connectome(
    subject: str,
    clean_bold: str | Path,
    brain_mask: str | Path,
    bold_sidecar: str | Path,
    atlas_dseg: str | Path,
    atlas_tsv: str | Path,
    deriv_root: str | Path,
    settings: ConnectivitySettings,
) -> dict[str, Path]:
    """Region time series and matrices of one subject's clean BOLD.

    Parameters
    ----------
    subject : str
        Participant label, with or without ``sub-``.
    clean_bold, brain_mask, bold_sidecar : path
        The functional stage's clean BOLD (MNI), its brain mask and the BOLD's sidecar
        (``RepetitionTime``).
    atlas_dseg, atlas_tsv : path
        The atlas on the same grid and its ``index``/``name`` table (group rule ``atlas``).
    deriv_root : path
        BIDS-derivatives root.
    settings : ConnectivitySettings
        Atlas, coverage threshold and policy.

    Returns
    -------
    dict of str to Path
        :func:`~neurofusion.connectivity.outputs.connectivity_outputs`, all written.

    Raises
    ------
    InputError
        The atlas is on another grid than the BOLD, or (``low_coverage: error``) a region
        is poorly covered or constant.
    """
    label = subject_label(subject)
    bold = nib.load(str(clean_bold))
    atlas, table = read_atlas(atlas_dseg, atlas_tsv)
    if atlas.shape != bold.shape[:3] or not np.allclose(atlas.affine, bold.affine, atol=1e-3):
        raise InputError(
            label,
            atlas_dseg,
            f"the atlas grid {atlas.shape} differs from the clean BOLD's {bold.shape[:3]}",
            "delete the atlas file so that rule atlas rebuilds it on the BOLD grid",
        )
    signals = region_signals(
        np.asarray(bold.dataobj, dtype=np.float32),
        np.asarray(nib.load(str(brain_mask)).dataobj) > 0,
        np.asarray(atlas.dataobj),
        table["index"].to_numpy(),
    )
    names = table["name"].tolist()
    coverage = [
        {
            "region": name,
            "n_voxels": int(signals.n_voxels[i]),
            "fraction_in_mask": round(float(signals.fraction_in_mask[i]), 4),
            "fraction_with_signal": round(float(signals.fraction_with_signal[i]), 4),
        }
        for i, name in enumerate(names)
    ]
    tr = json.loads(Path(bold_sidecar).read_text())["RepetitionTime"]
    return _write_connectome(
        label,
        signals.series,
        names,
        flag_regions(names, signals.series, signals.fraction_with_signal, settings.min_coverage),
        coverage,
        tr,
        [clean_bold, brain_mask, atlas_dseg, atlas_tsv],
        deriv_root,
        settings,
    )


def run_connectome_from_timeseries(
    subject: str,
    timeseries: str | Path,
    deriv_root: str | Path,
    settings: ConnectivitySettings,
    min_timepoints: int = 50,
    expected_regions: int | None = None,
) -> dict[str, Path]:
    """Matrices of one subject from region time series written by another pipeline.

    Region names come from the file's header; without one, the configured atlas's names
    when the counts agree, else ``region_001`` ... Coverage is unknown, so only constant
    columns (and columns that were all NaN) are flagged.

    Parameters
    ----------
    subject : str
        Participant label.
    timeseries : path
        TSV, CSV, ``.1D`` or ``.mat`` (see :mod:`~neurofusion.connectivity.readers`).
    deriv_root : path
        BIDS-derivatives root.
    settings : ConnectivitySettings
        Atlas (for names) and policy.
    min_timepoints : int
        Fewest time points accepted.
    expected_regions : int, optional
        Region count of the rest of the cohort.

    Returns
    -------
    dict of str to Path
        :func:`~neurofusion.connectivity.outputs.connectivity_outputs`, all written.

    Raises
    ------
    InputError
        See :func:`~neurofusion.connectivity.derivatives.load_derivative_timeseries`.
    """
    label = subject_label(subject)
    series, names = load_derivative_timeseries(timeseries, label, min_timepoints, expected_regions)
    if names is None:
        atlas_names = atlas_table(settings)["name"].tolist()
        n = series.shape[1]
        names = (
            atlas_names if len(atlas_names) == n else [f"region_{i:03d}" for i in range(1, n + 1)]
        )
    coverage = [{"region": name, "n_voxels": None} for name in names]
    flagged = flag_regions(names, series, None, settings.min_coverage)
    return _write_connectome(
        label, series, names, flagged, coverage, None, [timeseries], deriv_root, settings
    )


def _write_connectome(
    label: str,
    series: np.ndarray,
    names: Sequence[str],
    flagged: Mapping[str, str],
    coverage: Sequence[Mapping[str, Any]],
    tr: float | None,
    sources: Sequence[str | Path],
    deriv_root: str | Path,
    settings: ConnectivitySettings,
) -> dict[str, Path]:
    """Apply the coverage policy, compute both matrices and write every output."""
    source = sources[0]
    enforce_policy(dict(flagged), settings.low_coverage, label, source)
    outputs = connectivity_outputs(deriv_root, label, settings.atlas)
    is_flagged = np.isin(list(names), list(flagged))
    r = pearson(series, is_flagged)
    z = fisher_z(r)
    with atomic_path(outputs["timeseries"]) as tmp:
        pd.DataFrame(series, columns=list(names)).to_csv(
            tmp, sep="\t", index=False, float_format="%.8g", lineterminator="\n"
        )
    atlas = atlas_label(settings.atlas)
    common = {
        "Atlas": atlas,
        "Sources": [str(s) for s in sources],
        "FlaggedRegions": dict(flagged),
        "LowCoveragePolicy": settings.low_coverage,
    }
    write_json(
        outputs["timeseries_json"],
        {
            **common,
            "Description": (
                "mean clean BOLD of each region's voxels inside the brain mask with a varying "
                "signal (0 for a region without such voxels); columns in atlas order"
                if tr is not None
                else "region time series read from the input derivatives, checked"
            ),
            "RepetitionTime": tr,
        },
    )
    edges = "edges of flagged regions are 0"
    write_relmat(outputs["pearson"], r, names)
    write_json(
        outputs["pearson_json"],
        {
            **common,
            "Measure": "Pearson correlation",
            "MeasureDescription": f"Pearson r between region time series; diagonal 1; {edges}",
            "Sources": [str(outputs["timeseries"])],
        },
    )
    write_relmat(outputs["fisherz"], z, names)
    write_json(
        outputs["fisherz_json"],
        {
            **common,
            "Measure": "Fisher z",
            "MeasureDescription": (
                f"arctanh(r) with |r| clipped to {R_MAX}; diagonal set to 0 (arctanh(1) is "
                f"infinite); {edges}"
            ),
            "Sources": [str(outputs["timeseries"])],
        },
    )
    write_json(
        outputs["coverage"],
        {
            "atlas": atlas,
            "min_coverage": settings.min_coverage,
            "low_coverage": settings.low_coverage,
            "n_regions": len(names),
            "n_flagged": len(flagged),
            "flagged": [{"region": name, "reason": why} for name, why in flagged.items()],
            "regions": list(coverage),
        },
    )
    with atomic_path(outputs["figure"]) as tmp:
        matrix_figure(r, names, f"sub-{label}: Pearson r, {atlas} ({len(flagged)} flagged)", tmp)
    write_provenance(
        outputs["provenance"],
        step="connectivity",
        inputs=sources,
        parameters=dataclasses.asdict(settings),
        extra={"subject": f"sub-{label}"},
    )
    return outputs
