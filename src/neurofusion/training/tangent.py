"""Tangent-space connectivity matrices as a network input, the reference fitted in fold.

Dadi et al. (NeuroImage 2019) found tangent-space connectivity the best connectome
representation for classification across six cohorts; on the synthetic cohorts here too a
linear model on it beats one on Fisher-z correlations (``logreg_tangent`` against
``svm_connectivity``, docs/benchmarks.md). ``models.connectivity_input: tangent`` gives
BrainNetCNN (alone and as a fusion branch) the same matrices.

nilearn's :class:`~nilearn.connectome.ConnectivityMeasure` fits the reference (the
geometric mean of the training subjects' Ledoit-Wolf covariances) exactly as
``logreg_tangent`` does; the transform is written out here, with nilearn's formula
``logm(W C W)``, because nilearn refuses to transform a single subject and keeps the
reference in an object that ``torch.load(weights_only=True)`` cannot restore.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from sklearn.covariance import LedoitWolf
from threadpoolctl import threadpool_limits


def tangent_matrix(series: np.ndarray, whitening: np.ndarray) -> np.ndarray:
    """(N, N) tangent-space matrix ``logm(W C W)`` of one subject's (T, N) series, C its
    Ledoit-Wolf covariance and W the reference's inverse square root."""
    covariance = LedoitWolf(store_precision=False).fit(series).covariance_
    values, vectors = np.linalg.eigh(whitening @ covariance @ whitening)
    return (vectors * np.log(values)) @ vectors.T


class TangentMatrices:
    """(n, 1, N, N) view of the cohort's tangent-space matrices, indexed like an array.

    Parameters
    ----------
    series : sequence of numpy.ndarray or None
        Per cohort subject, (T, N) region time series; None without BOLD (its matrix is
        all zeros, the mark of an absent modality).
    n_regions : int
        N.
    whitening : numpy.ndarray, optional
        (N, N) inverse square root of the reference; set by :meth:`fit`.
    """

    def __init__(self, series: Sequence[np.ndarray | None], n_regions: int, whitening=None) -> None:
        self.series = series
        self.n_regions = n_regions
        self.whitening = whitening
        self.shape = (len(series), 1, n_regions, n_regions)

    def fit(self, rows: np.ndarray) -> TangentMatrices:
        """A copy whose reference is fitted on the subjects of ``rows`` (those with
        BOLD), as nilearn fits it."""
        from nilearn.connectome import ConnectivityMeasure

        fitted = [self.series[i] for i in rows if self.series[i] is not None]
        with threadpool_limits(limits=1):
            measure = ConnectivityMeasure(kind="tangent").fit(fitted)
        return TangentMatrices(self.series, self.n_regions, measure.whitening_)

    def __getitem__(self, rows) -> np.ndarray:
        """(len(rows), 1, N, N) float32 matrices of the subjects of ``rows``."""
        if self.whitening is None:
            raise RuntimeError("TangentMatrices: fit the reference before reading matrices")
        rows = np.atleast_1d(np.arange(len(self.series))[rows])
        out = np.zeros((len(rows), 1, self.n_regions, self.n_regions), dtype=np.float32)
        with threadpool_limits(limits=1):
            for k, i in enumerate(rows):
                if self.series[i] is not None:
                    out[k, 0] = tangent_matrix(self.series[i], self.whitening)
        return out

    def state(self) -> dict[str, torch.Tensor]:
        """torch-serialisable reference."""
        return {"whitening": torch.from_numpy(np.ascontiguousarray(self.whitening))}

    def restored(self, state: Mapping[str, torch.Tensor]) -> TangentMatrices:
        """A copy with the reference of a :meth:`state` copy."""
        return TangentMatrices(self.series, self.n_regions, np.asarray(state["whitening"]))
