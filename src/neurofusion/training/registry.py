"""Every classifier of the study, by the name used in config.yaml and output folders.

Deep models (torch; :mod:`~neurofusion.training.deep`, imported only to fit one, so the
linear models' jobs do not load torch) train on the split's ``train`` subjects, or the
whole training fold (``models.stopping``). Linear models (:mod:`~neurofusion.training.
linear`) fit on the whole training fold, choosing C by an inner cross-validation.

In a cohort where some subjects lack a modality, every model sees only the subjects it can
use (:func:`usable`): a single-modality model those with its modality; ``fusion`` and
``late_fusion`` every subject with at least one of theirs.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence

import numpy as np

from neurofusion.training.cohort import Cohort
from neurofusion.training.fold import FitLog, Fold, FoldResult, ModelSpec

#: The study's models and baselines, by the name used in config.yaml and output folders.
MODELS: dict[str, ModelSpec] = {
    "cnn3d": ModelSpec(
        module="deep", arrays=("t1",), deep=True, description="3D CNN on the MNI T1"
    ),
    "brainnetcnn": ModelSpec(
        module="deep",
        arrays=("fc", "timeseries"),
        deep=True,
        description="BrainNetCNN on connectivity matrices (models.connectivity_input)",
    ),
    "fusion": ModelSpec(
        module="deep",
        arrays=("t1", "fc", "timeseries"),
        deep=True,
        branches=("cnn3d", "brainnetcnn"),
        description="intermediate fusion of both encoders (the study's)",
    ),
    "late_fusion": ModelSpec(
        module="deep",
        arrays=("t1", "fc", "timeseries"),
        deep=False,
        branches=("cnn3d", "brainnetcnn"),
        description="the branches' logits combined: their mean, or a logistic "
        "regression on their inner-CV logits (models.late_fusion: stacking)",
    ),
    "early_fusion": ModelSpec(
        module="deep",
        arrays=("t1", "maps"),
        deep=True,
        description="3D CNN on stacked T1, fALFF and ReHo",
    ),
    "svm_connectivity": ModelSpec(
        module="linear",
        arrays=("fc",),
        deep=False,
        description="linear SVM on the connectivity upper triangle",
    ),
    "logreg_tangent": ModelSpec(
        module="linear",
        arrays=("timeseries",),
        deep=False,
        description="logistic regression on tangent-space connectivity",
    ),
    "svm_gm": ModelSpec(
        module="linear", arrays=("gm",), deep=False, description="linear SVM on grey-matter voxels"
    ),
    "svm_handcrafted": ModelSpec(
        module="linear",
        arrays=("handcrafted",),
        deep=False,
        description="linear SVM on regional GM volume + GLCM texture",
    ),
}


def fit_model(name: str, fold: Fold, log: FitLog, branches: Mapping | None = None) -> FoldResult:
    """Fit model ``name`` on ``fold`` (its module's ``FITS[name]``); ``branches``: the same
    fold's outputs of the models it builds on (``fusion``, ``late_fusion``)."""
    module = importlib.import_module(f"neurofusion.training.{MODELS[name].module}")
    return module.FITS[name](fold, log, branches)


def usable(name: str, cohort: Cohort) -> np.ndarray:
    """(n,) bool: the cohort subjects model ``name`` can fit and score.

    Fusion models (those with branches) take a subject with any of their modalities; the
    others need all of theirs.
    """
    spec = MODELS[name]
    flags = [cohort.has(m) for m in spec.modalities]
    return np.logical_or.reduce(flags) if spec.branches else np.logical_and.reduce(flags)


def usable_ids(name: str, cohort: Cohort, ids: Sequence[str]) -> list[str]:
    """The participants of ``ids`` that model ``name`` can use (:func:`usable`), in order."""
    keep = usable(name, cohort)
    return [pid for pid, ok in zip(ids, keep[cohort.indices(ids)], strict=True) if ok]


def available_models(
    enabled: Sequence[str], modalities: Sequence[str], why: str = "absent from input.modalities"
) -> dict[str, str]:
    """Enabled models whose inputs exist for ``modalities``; others map to why not.

    ``why`` completes the reason ("needs T1w, <why>").

    Returns
    -------
    dict
        ``{model: ""}`` for the runnable ones, ``{model: reason}`` for the skipped ones.
    """
    out = {}
    for name in enabled:
        missing = sorted(set(MODELS[name].modalities) - set(modalities))
        out[name] = (
            f"needs {' and '.join(missing)}, absent from input.modalities" if missing else ""
        )
    return out
