"""Recovered connectivity scored against the simulator's truth.

Used by the tests (tiny cohort) and by ``benchmarks/demo_connectivity.py`` (demo cohort,
issue 5's acceptance): how closely a subject's Fisher-z matrix follows its true
connectivity, and whether the planted default-mode <-> ventral-striatum group difference
shows in the outputs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from neurofusion.simulate.function import NETWORKS, VENTRAL_STRIATUM, members


def truth_correlation(fisherz_tsv: Path, coverage_json: Path, truth_tsv: Path) -> float:
    """Pearson r between a recovered and the true Fisher-z upper triangle.

    Regions flagged for low coverage or a constant signal (their edges set to 0 by the
    ``zero`` policy) are left out, since their recovered edges carry no estimate.

    Parameters
    ----------
    fisherz_tsv : Path
        ``..._stat-fisherz_relmat.tsv`` (116 x 116, labelled).
    coverage_json : Path
        The subject's coverage JSON (its ``flagged`` list names the regions).
    truth_tsv : Path
        The simulator's ``truth/sub-X/connectivity.tsv`` (true Pearson r, 116 x 116).

    Returns
    -------
    float
        r over the usable edges (unitless).
    """
    fisherz = pd.read_csv(fisherz_tsv, sep="\t", index_col=0)
    names = list(fisherz.columns)
    true_r = pd.read_csv(truth_tsv, sep="\t")[names].to_numpy()
    flagged = {flag["region"] for flag in json.loads(Path(coverage_json).read_text())["flagged"]}
    usable = ~np.isin(names, list(flagged))
    upper = np.triu_indices(len(names), k=1)
    keep = usable[upper[0]] & usable[upper[1]]
    recovered = fisherz.to_numpy()[upper][keep]
    return float(np.corrcoef(recovered, np.arctanh(true_r[upper][keep]))[0, 1])


def planted_edge_tests(
    fisherz_tsvs: Sequence[Path], groups: Sequence[str], patient_group: str
) -> dict[str, float | int]:
    """Patients vs controls on the default-mode <-> ventral-striatum edges (t-tests).

    Parameters
    ----------
    fisherz_tsvs : sequence of Path
        Every subject's Fisher-z matrix.
    groups : sequence of str
        Each subject's group, in the same order.
    patient_group : str
        The group the simulator gave the stronger coupling.

    Returns
    -------
    dict
        ``block_t``, ``block_p``: Student's two-sample t-test of each subject's mean
        Fisher z over the block; ``edges``: number of block edges; ``edges_p_below_0.01``
        and ``edges_p_below_0.05``: edges whose own two-sided t-test has p below 0.01 and
        0.05 with patients above controls (an edge with the opposite sign counts as
        p = 1); ``edge_min_p``: the smallest such edge p.
    """
    dmn = np.flatnonzero(members(NETWORKS["default_mode"]))
    striatum = np.flatnonzero(members(VENTRAL_STRIATUM))
    blocks = np.stack(
        [
            pd.read_csv(p, sep="\t", index_col=0).to_numpy()[np.ix_(dmn, striatum)]
            for p in fisherz_tsvs
        ]
    )
    patients = np.asarray(groups) == patient_group
    block = stats.ttest_ind(blocks[patients].mean(axis=(1, 2)), blocks[~patients].mean(axis=(1, 2)))
    edges = stats.ttest_ind(blocks[patients], blocks[~patients], axis=0)
    p = np.where(edges.statistic > 0, edges.pvalue, 1.0)
    return {
        "block_t": float(block.statistic),
        "block_p": float(block.pvalue),
        "edges": int(p.size),
        "edges_p_below_0.01": int((p < 0.01).sum()),
        "edges_p_below_0.05": int((p < 0.05).sum()),
        "edge_min_p": float(p.min()),
    }
