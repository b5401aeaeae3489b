"""The deep models of :mod:`~neurofusion.training.registry` (torch): ``cnn3d``,
``brainnetcnn``, ``early_fusion``, ``fusion`` and ``late_fusion``, whose branches are deep.

They train on the split's ``train`` subjects and stop early on its ``validation``
subjects. :func:`~neurofusion.training.registry.fit_model` imports this module only when
one of them is fitted, so the linear models' jobs do not load torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from neurofusion.errors import NeurofusionError
from neurofusion.models import CNN3D, BrainNetCNN, FusionNet
from neurofusion.training.cohort import Cohort
from neurofusion.training.fold import FitLog, Fold, FoldResult, inner_cv
from neurofusion.training.history import HISTORY_COLUMNS
from neurofusion.training.loop import predict_proba, train_network
from neurofusion.training.registry import usable_ids
from neurofusion.training.splits import split_seed
from neurofusion.training.tangent import TangentMatrices

#: Probabilities are clipped to [EPS, 1 - EPS] before the logit in late fusion.
EPS = 1e-6


def deep_inputs(name: str, cohort: Cohort, connectivity: str = "fisherz") -> list:
    """The (n, C, ...) arrays a deep model reads (memory-mapped until indexed).

    ``connectivity`` (``models.connectivity_input``): ``fisherz``, the cohort's Fisher-z
    matrices, or ``tangent``, :class:`~neurofusion.training.tangent.TangentMatrices`
    whose reference must be fitted (:func:`fit_inputs`) before they are read. Only the
    inputs of model ``name`` are opened (the 3D CNN does not load the time series).
    """
    if name == "early_fusion":
        return [_StackedChannels(cohort.array("t1"), cohort.array("maps"))]
    reads = {"cnn3d": ("t1",), "brainnetcnn": ("fc",), "fusion": ("t1", "fc")}[name]
    return [
        cohort.array("t1")[:, None] if array == "t1" else _connectivity(cohort, connectivity)
        for array in reads
    ]


def _connectivity(cohort: Cohort, connectivity: str):
    """The connectivity input: Fisher-z matrices (n, 1, N, N) or their tangent view."""
    if connectivity == "tangent":
        return TangentMatrices(cohort.timeseries, cohort.array("fc").shape[-1])
    return cohort.array("fc")[:, None]


def fit_inputs(inputs: Sequence, rows: np.ndarray) -> list:
    """``inputs`` with every fitted one (a tangent reference) fitted on ``rows``."""
    return [x.fit(rows) if hasattr(x, "fit") else x for x in inputs]


def input_states(inputs: Sequence) -> list:
    """The fitted part of each input (``None`` for plain arrays), for ``model.pt``."""
    return [x.state() if hasattr(x, "state") else None for x in inputs]


def restored_inputs(name: str, cohort: Cohort, artefact: Mapping) -> list:
    """Model ``name``'s inputs with the fitted parts a saved ``model.pt`` holds."""
    states = artefact.get("inputs") or []
    connectivity = "tangent" if any(states) else "fisherz"
    inputs = deep_inputs(name, cohort, connectivity)
    return [
        x.restored(state) if state else x
        for x, state in zip(inputs, states or [None] * len(inputs), strict=True)
    ]


class _StackedChannels:
    """(n, 1 + C, X, Y, Z) view of a T1 stack and a map stack, built per indexed subset."""

    def __init__(self, t1: np.ndarray, maps: np.ndarray) -> None:
        self.t1, self.maps = t1, maps
        self.shape = (t1.shape[0], 1 + maps.shape[1], *t1.shape[1:])

    def __getitem__(self, index) -> np.ndarray:
        return np.concatenate([self.t1[index][:, None], self.maps[index]], axis=1)


def build_network(
    name: str,
    t1_shape: Sequence[int] | None = None,
    n_regions: int | None = None,
    map_channels: int = 0,
    modality_dropout: float = 0.0,
    architecture: Mapping[str, Any] | None = None,
) -> torch.nn.Module:
    """A fresh, untrained network of model ``name``.

    Parameters
    ----------
    name : str
        ``cnn3d``, ``brainnetcnn``, ``fusion`` or ``early_fusion``.
    t1_shape : sequence of int, optional
        (X, Y, Z) of the 3D-CNN grid (models with a T1 branch).
    n_regions : int, optional
        N of the N x N connectivity matrices (models with a connectivity branch).
    map_channels : int
        Voxel-wise BOLD maps stacked with the T1 (``early_fusion``).
    modality_dropout : float
        Of ``fusion`` (:class:`~neurofusion.models.FusionNet`).
    architecture : mapping, optional
        :meth:`~neurofusion.training.settings.TrainSettings.architecture`:
        ``cnn_channels``, ``cnn_pooling``, ``brainnetcnn_channels`` (default: the study's).
    """
    arch = dict(architecture or {})
    cnn = {key: arch[f"cnn_{key}"] for key in ("channels", "pooling") if f"cnn_{key}" in arch}
    brainnet = dict(zip(("e2e_channels", "e2n_channels", "n2g_channels"),
                        arch.get("brainnetcnn_channels", ()), strict=False))  # fmt: skip
    if name in ("cnn3d", "early_fusion"):
        channels = 1 if name == "cnn3d" else 1 + map_channels
        return CNN3D(tuple(t1_shape), in_channels=channels, **cnn)
    if name == "brainnetcnn":
        return BrainNetCNN(n_regions, **brainnet)
    if name == "fusion":
        return FusionNet(
            build_network("cnn3d", t1_shape, architecture=arch),
            build_network("brainnetcnn", n_regions=n_regions, architecture=arch),
            modality_dropout,
        )
    raise KeyError(name)


def network_builder(
    name: str,
    cohort: Cohort,
    modality_dropout: float = 0.0,
    architecture: Mapping[str, Any] | None = None,
) -> Callable[[], torch.nn.Module]:
    """Factory of fresh networks of model ``name`` for the cohort's input shapes."""
    shapes: dict[str, Any] = {}
    if "T1w" in cohort.modalities:
        shapes["t1_shape"] = cohort.array("t1").shape[1:]
    if "bold" in cohort.modalities:
        shapes["n_regions"] = cohort.array("fc").shape[-1]
    if name == "early_fusion":
        shapes["map_channels"] = cohort.array("maps").shape[1]
    return lambda: build_network(
        name, modality_dropout=modality_dropout, architecture=architecture, **shapes
    )


def _train_deep(
    name: str,
    fold: Fold,
    log: FitLog,
    train: Sequence[str],
    validation: Sequence[str],
    apply: Sequence[str],
    seed: int,
    initial_state: dict | None = None,
) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Train model ``name`` and score ``apply``.

    With ``stopping: fixed`` the network trains on ``train`` and ``validation`` together
    for the set number of epochs; with ``validation`` it trains on ``train`` and stops
    early on ``validation``. Subjects the model cannot use (:func:`usable`) are left out
    of training, and their probability is NaN. Returns the probabilities of ``apply``,
    the history and the artefact to save.
    """
    settings = fold.settings.for_model(name)
    if settings.stopping == "fixed":
        train, validation = [*train, *validation], []
    train, validation = (usable_ids(name, fold.cohort, ids) for ids in (train, validation))
    scored = usable_ids(name, fold.cohort, apply)
    rows = {key: fold.cohort.indices(ids) for key, ids in
            (("train", train), ("validation", validation), ("apply", scored))}  # fmt: skip
    inputs = deep_inputs(name, fold.cohort, settings.connectivity_input)
    inputs = fit_inputs(inputs, rows["train"])
    if any(hasattr(x, "state") for x in inputs):
        log.record("tangent_reference", train)
    model, scaler, history = train_network(
        network_builder(name, fold.cohort, settings.modality_dropout, settings.architecture()),
        [x[rows["train"]] for x in inputs],
        fold.labels[rows["train"]],
        [x[rows["validation"]] for x in inputs],
        fold.labels[rows["validation"]],
        settings,
        seed,
        initial_state=initial_state,
        shift_voxels=[settings.shift_voxels if len(x.shape) == 5 else 0 for x in inputs],
    )
    log.record("input_scaling", train)
    log.record("network", train)
    if validation and settings.stopping == "validation":
        log.record("early_stopping", validation)
    probability = np.full(len(apply), np.nan)
    probability[np.isin(apply, scored)] = predict_proba(
        model, scaler.transform([x[rows["apply"]] for x in inputs]), torch.device("cpu")
    )
    artefact = {
        "model": name,
        "state_dict": model.state_dict(),
        "scaler": scaler.state(),
        "inputs": input_states(inputs),
        "architecture": settings.architecture(),
    }
    return probability, history, artefact


def _train_on_split(
    name: str,
    fold: Fold,
    log: FitLog,
    apply: Sequence[str],
    initial_state: dict | None = None,
) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """:func:`_train_deep` on the split's own ``train`` and ``validation`` subjects."""
    return _train_deep(
        name,
        fold,
        log,
        fold.ids("train"),
        fold.ids("validation"),
        apply,
        fold.seed,
        initial_state=initial_state,
    )


def _fit_single_deep(name: str) -> Callable[..., FoldResult]:
    def fit(fold: Fold, log: FitLog, branches: Mapping | None = None) -> FoldResult:
        return FoldResult(*_train_on_split(name, fold, log, fold.ids("test")))

    return fit


def ensemble_head(initial: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The fusion's output layer (``out.weight`` (2, 128), ``out.bias`` (2,)) as the mean
    of its branches' output layers, from a ``state_dict`` holding ``cnn.out.*`` and
    ``brainnet.out.*``.

    The fusion then starts as the average of its trained branches' logits (their
    ensemble), and fine-tuning starts from there. A fresh readout of trained branch
    features started at a loss of 0.09 to 4.3 instead of near the branches' own.
    """
    weights = [initial[f"{branch}.out.weight"] for branch in ("cnn", "brainnet")]
    return {
        "out.weight": 0.5 * torch.cat(weights, dim=1),
        "out.bias": 0.5 * (initial["cnn.out.bias"] + initial["brainnet.out.bias"]),
    }


def fit_fusion(fold: Fold, log: FitLog, branches: Mapping | None = None) -> FoldResult:
    """Intermediate fusion, trained end to end.

    With ``settings.fusion_init == "branches"`` the encoders start from this fold's trained
    ``cnn3d`` and ``brainnetcnn``: ``branches[name]`` = ``{"state_dict", "fitted"}`` of the
    same fold (from their jobs), or, when absent, they are trained here first on the same
    subjects; the output layer starts as :func:`ensemble_head`.
    """
    initial = None
    if fold.settings.fusion_init == "branches":
        initial = {}
        for name, prefix in (("cnn3d", "cnn"), ("brainnetcnn", "brainnet")):
            if branches and name in branches:
                state, fitted = branches[name]["state_dict"], branches[name]["fitted"]
            else:
                branch_log = FitLog()
                _, _, artefact = _train_on_split(name, fold, branch_log, [])
                state, fitted = artefact["state_dict"], branch_log.steps
            log.merge(name, fitted)
            initial |= {f"{prefix}.{key}": value for key, value in state.items()}
        initial |= ensemble_head(initial)
    return FoldResult(*_train_on_split("fusion", fold, log, fold.ids("test"), initial))


#: The branches of ``late_fusion``, in the column order of its probability arrays.
LATE_FUSION_BRANCHES = ("cnn3d", "brainnetcnn")


def fit_late_fusion(fold: Fold, log: FitLog, branches: Mapping | None = None) -> FoldResult:
    """Late fusion of the branches' probabilities (``settings.late_fusion``).

    ``mean``: the test subjects' probability is the logistic of the mean of the branches'
    logits; nothing is fitted beyond the branches. ``stacking``: late fusion by feature
    transformation (PAPER.md section 3): inside the training fold, each branch
    (``cnn3d``, ``brainnetcnn``) is cross-validated (``settings.inner_folds``; with
    ``stopping: validation``, early stopping on a stratified share of each inner training
    set); its out-of-fold probabilities, as logits, train a logistic regression.

    Either way the test subjects get the branches trained on the whole training fold:
    ``branches[name]`` = ``{"probability": {participant_id: p}, "fitted"}`` of the same
    fold, or trained here when absent. A subject without a branch's modality has logit 0
    for it (probability 0.5: no evidence either way), so it is scored from the other.
    """
    if fold.settings.late_fusion == "mean":
        test_logits = _branch_logits(_branch_test_probabilities(fold, log, branches))
        history = pd.DataFrame(columns=list(HISTORY_COLUMNS))
        return FoldResult(expit(test_logits.mean(axis=1)), history, {"combine": "mean"})
    # The inner CV first: it stops a cohort too small for it before any branch trains.
    oof, curves = _inner_branch_probabilities(fold, log)
    test_logits = _branch_logits(_branch_test_probabilities(fold, log, branches))
    training = fold.ids("train", "validation")
    stacker = LogisticRegression(class_weight="balanced")
    stacker.fit(_branch_logits(oof), fold.labels[fold.cohort.indices(training)])
    log.record("stacker", training)
    return FoldResult(stacker.predict_proba(test_logits)[:, 1], curves, stacker)


def _branch_test_probabilities(fold: Fold, log: FitLog, branches: Mapping | None) -> np.ndarray:
    """(n_test, 2) probabilities of :data:`LATE_FUSION_BRANCHES` for the fold's test
    subjects (NaN: the subject lacks the branch's modality)."""
    test = fold.ids("test")
    test_prob = np.zeros((len(test), len(LATE_FUSION_BRANCHES)))
    for j, name in enumerate(LATE_FUSION_BRANCHES):
        if branches and name in branches:
            test_prob[:, j] = [branches[name]["probability"].get(pid, np.nan) for pid in test]
            log.merge(name, branches[name]["fitted"])
        else:
            branch_log = FitLog()
            test_prob[:, j], _, _ = _train_on_split(name, fold, branch_log, test)
            log.merge(name, branch_log.steps)
    return test_prob


def _inner_branch_probabilities(fold: Fold, log: FitLog) -> tuple[np.ndarray, pd.DataFrame]:
    """Out-of-fold probabilities (n_training, 2) of the branches over an inner CV of the
    training fold, and their training curves."""
    training = fold.ids("train", "validation")
    rows = fold.cohort.indices(training)
    inner = inner_cv(fold.labels[rows], fold.settings.inner_folds, fold.seed)
    if inner is None:
        raise NeurofusionError(
            "late_fusion: stacking needs an inner cross-validation of each training fold, "
            "but a group has fewer than 2 training subjects in it; add subjects, lower "
            "models.folds, or set models.late_fusion: mean"
        )
    oof = np.zeros((len(training), len(LATE_FUSION_BRANCHES)))
    curves = []
    for k, (fit_rows, held_rows) in enumerate(inner.split(rows, fold.labels[rows])):
        fit_ids = [training[i] for i in fit_rows]
        train_ids, val_ids = train_test_split(
            fit_ids,
            test_size=fold.validation_fraction,
            stratify=fold.labels[fold.cohort.indices(fit_ids)],
            random_state=split_seed(fold.seed, k),
        )
        held = [training[i] for i in held_rows]
        for j, name in enumerate(LATE_FUSION_BRANCHES):
            branch_log = FitLog()
            oof[held_rows, j], history, _ = _train_deep(
                name, fold, branch_log, train_ids, val_ids, held, split_seed(fold.seed, k, j)
            )
            log.merge(f"inner-{k}/{name}", branch_log.steps)
            curves.append(history.assign(model=name, inner_fold=k))
    return oof, pd.concat(curves, ignore_index=True)


def _branch_logits(probability: np.ndarray) -> np.ndarray:
    """Logits of (n, branches) probabilities, clipped to [EPS, 1 - EPS]; NaN (a branch
    without its modality) becomes 0."""
    return np.nan_to_num(logit(np.clip(probability, EPS, 1 - EPS)), nan=0.0)


#: Each deep model's ``fit(fold, log, branches) -> FoldResult``, by name.
FITS: dict[str, Callable[..., FoldResult]] = {
    "cnn3d": _fit_single_deep("cnn3d"),
    "brainnetcnn": _fit_single_deep("brainnetcnn"),
    "early_fusion": _fit_single_deep("early_fusion"),
    "fusion": fit_fusion,
    "late_fusion": fit_late_fusion,
}
