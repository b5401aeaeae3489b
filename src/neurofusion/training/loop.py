"""Seeded, deterministic training of a torch classifier.

One training run sees the ``train`` subjects (gradient steps) and, optionally,
``validation`` subjects (monitored; used for early stopping only with
``models.stopping: validation``). Batches come in a seeded random order; weights, dropout,
augmentation and batch order follow from one seed, and torch runs in deterministic mode,
so the same data, settings and seed give identical weights on the CPU.

The recipe is the field's standard for small cohorts: inputs standardised per feature on
the training subjects (:class:`InputScaler`), AdamW with decoupled weight decay, a
one-cycle learning-rate schedule (warm-up, then cosine annealing to nearly zero),
gradient-norm clipping, and a fixed number of epochs whose last is kept
(:attr:`~neurofusion.training.settings.TrainSettings.stopping`). Every run records the
loss at initialisation (epoch 0 of the history) and each layer's gradient norm per epoch.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from neurofusion.training.history import GRAD_PREFIX, HISTORY_COLUMNS
from neurofusion.training.settings import TrainSettings


def select_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu``/``cuda`` as asked."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("models.device is 'cuda' but torch sees no CUDA device")
    return torch.device(device)


def seed_everything(seed: int, threads: int) -> None:
    """Seed torch, fix its thread count and make it deterministic (numpy randomness in
    neurofusion always comes from explicitly seeded Generators)."""
    # cuBLAS needs this to be deterministic; harmless on the CPU.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(max(1, int(threads)))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


@dataclasses.dataclass
class InputScaler:
    """Standardisation of each model input, fitted on the training subjects of a run only
    and applied to every subject.

    ``per="feature"`` gives every element (each connectivity edge, each voxel of each
    channel) its own mean and SD, as the connectome literature standardises edges and as
    the linear baselines' ``StandardScaler`` does; it leaves the network what differs
    between subjects instead of the common anatomy or connectome. ``per="channel"`` uses
    one mean and SD per input channel. An SD below :data:`SD_FLOOR` times the median SD of
    the input's varying elements is raised to that floor, so that an element nearly
    constant over the training subjects (a voxel at the brain's edge) cannot blow up.

    A subject whose input is all zeros (a modality it does not have, see
    :mod:`~neurofusion.training.cohort`) is left out of the statistics and stays all
    zeros after scaling, so the network still sees that the modality is absent.

    Attributes
    ----------
    mean, std : list of numpy.ndarray
        For each input of shape (n, C, ...), (C, ...) element means and SDs
        (``per="feature"``) or (C,) channel ones (float32).
    """

    mean: list[np.ndarray]
    std: list[np.ndarray]

    #: Smallest SD relative to the median SD of an input's varying elements.
    SD_FLOOR = 0.1

    @classmethod
    def fit(cls, inputs: Sequence[np.ndarray], per: str = "feature") -> InputScaler:
        """Fit on (n, C, ...) arrays of the training subjects; ``per``: ``feature`` or
        ``channel``."""
        if per not in ("feature", "channel"):
            raise ValueError(f"input scaling is per 'feature' or 'channel', not {per!r}")
        means, stds = [], []
        for x in inputs:
            x = np.asarray(x)
            x = x[present(x)]
            axes = (0,) if per == "feature" else (0, *range(2, x.ndim))
            shape = x.shape[1:] if per == "feature" else x.shape[1:2]
            if len(x) == 0:
                means.append(np.zeros(shape, dtype=np.float32))
                stds.append(np.ones(shape, dtype=np.float32))
                continue
            means.append(np.asarray(x.mean(axis=axes, dtype=np.float64), dtype=np.float32))
            std = np.asarray(x.std(axis=axes, dtype=np.float64), dtype=np.float32)
            varying = std[std > 0]
            floor = cls.SD_FLOOR * float(np.median(varying)) if varying.size else 1.0
            stds.append(np.maximum(std, floor).astype(np.float32))
        return cls(means, stds)

    def transform(self, inputs: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Standardised float32 tensors (absent subjects' rows stay zero)."""
        out = []
        for x, mean, std in zip(inputs, self.mean, self.std, strict=True):
            x = np.asarray(x, dtype=np.float32)
            shape = (1, *mean.shape) + (1,) * (x.ndim - 1 - mean.ndim)
            z = (x - mean.reshape(shape)) / std.reshape(shape)
            z[~present(x)] = 0.0
            out.append(torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)))
        return out

    def state(self) -> dict[str, list[torch.Tensor]]:
        """torch-serialisable copy (loads with ``torch.load(weights_only=True)``)."""
        return {key: [torch.from_numpy(np.ascontiguousarray(v)) for v in getattr(self, key)]
                for key in ("mean", "std")}  # fmt: skip

    @classmethod
    def from_state(cls, state: Mapping[str, Sequence]) -> InputScaler:
        """The scaler a :meth:`state` copy was made of."""
        return cls(
            *([np.asarray(v, dtype=np.float32) for v in state[key]] for key in ("mean", "std"))
        )


def present(x: np.ndarray) -> np.ndarray:
    """(n,) bool: which rows of an (n, ...) input hold data (are not all zeros)."""
    x = np.asarray(x)
    return x.reshape(len(x), int(np.prod(x.shape[1:]))).any(axis=1)


def class_weights(y: np.ndarray) -> torch.Tensor:
    """Balanced cross-entropy weights ``n / (2 n_c)`` from the training labels."""
    counts = np.bincount(y, minlength=2).astype(np.float64)
    return torch.tensor(len(y) / (2.0 * np.maximum(counts, 1.0)), dtype=torch.float32)


def random_shift(x: torch.Tensor, voxels: int, generator: torch.Generator) -> torch.Tensor:
    """Each volume of a (batch, C, X, Y, Z) batch moved by its own random whole-voxel
    shift of at most ``voxels`` along each axis (zeros fill the vacated border).

    Augmentation for the 3D CNN: spatial normalisation leaves residual misregistration of
    a voxel or two at 4 mm, and the shift teaches the network not to rely on it.
    """
    if voxels <= 0:
        return x
    shifts = torch.randint(-voxels, voxels + 1, (len(x), 3), generator=generator).tolist()
    out = torch.zeros_like(x)
    size = x.shape[2:]
    for i, shift in enumerate(shifts):
        src = tuple(slice(max(0, -s), n - max(0, s)) for s, n in zip(shift, size, strict=True))
        dst = tuple(slice(max(0, s), n - max(0, -s)) for s, n in zip(shift, size, strict=True))
        out[(i, slice(None), *dst)] = x[(i, slice(None), *src)]
    return out


def mixup_pairs(
    n: int, alpha: float, generator: torch.Generator
) -> tuple[float, torch.Tensor | None]:
    """Mixup (Zhang et al., ICLR 2018) of a batch of ``n``: the share ``lambda`` ~
    Beta(alpha, alpha) of each subject and the batch order of its partner, who gives
    the rest; ``(1.0, None)`` when ``alpha`` is 0 (off).

    Each training input becomes ``lambda x + (1 - lambda) x[partner]`` and the loss
    ``lambda CE(y) + (1 - lambda) CE(y[partner])``: a regulariser for small cohorts that
    keeps the network near-linear between subjects.
    """
    if alpha <= 0:
        return 1.0, None
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    share = float(np.random.default_rng(seed).beta(alpha, alpha))
    return share, torch.randperm(n, generator=generator)


@torch.no_grad()
def logits_of(
    model: nn.Module, inputs: Sequence[torch.Tensor], device: torch.device, batch_size: int = 32
) -> torch.Tensor:
    """(n, 2) logits of ``model`` in evaluation mode (dropout off, batch-norm running
    statistics), on the CPU."""
    model.eval()
    out = [
        model(*(x[start : start + batch_size].to(device) for x in inputs)).cpu()
        for start in range(0, len(inputs[0]), batch_size)
    ]
    return torch.cat(out) if out else torch.zeros((0, 2))


def predict_proba(
    model: nn.Module, inputs: Sequence[torch.Tensor], device: torch.device, batch_size: int = 32
) -> np.ndarray:
    """(n,) positive-class probabilities (softmax of the logits), float64."""
    return torch.softmax(logits_of(model, inputs, device, batch_size), dim=1)[:, 1].double().numpy()


def _loss_and_accuracy(
    model: nn.Module,
    inputs: Sequence[torch.Tensor],
    y: torch.Tensor,
    weight: torch.Tensor,
    device: torch.device,
    batch_size: int,
) -> tuple[float, float]:
    """Mean class-weighted loss and accuracy on a set, in evaluation mode (NaN for an
    empty set)."""
    if len(y) == 0:
        return float("nan"), float("nan")
    logits = logits_of(model, inputs, device, batch_size)
    loss = float(nn.functional.cross_entropy(logits, y, weight=weight))
    accuracy = float((logits.argmax(dim=1) == y).float().mean())
    return loss, accuracy


def _layer(parameter_name: str) -> str:
    """The module that owns a parameter (``e2e.row.weight`` -> ``e2e.row``)."""
    return parameter_name.rpartition(".")[0] or parameter_name


def layer_names(model: nn.Module) -> list[str]:
    """The names of the modules that own trainable parameters, in registration order
    (``e2e.row``, ``blocks.0``, ...): the layers whose gradient norms are recorded."""
    names = []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad and _layer(name) not in names:
            names.append(_layer(name))
    return names


def _gradient_norms(model: nn.Module, layers: Sequence[str]) -> np.ndarray:
    """(len(layers),) L2 norm of each layer's parameter gradients."""
    squares = dict.fromkeys(layers, 0.0)
    for name, parameter in model.named_parameters():
        if parameter.grad is not None:
            squares[_layer(name)] += float(parameter.grad.pow(2).sum())
    return np.sqrt([squares[layer] for layer in layers])


@dataclasses.dataclass
class _Optimisation:
    """What a training epoch steps: the loss, optimiser, schedule and clipping."""

    loss_fn: nn.Module
    optimiser: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler | None
    grad_clip: float
    shift_voxels: Sequence[int]
    mixup: float
    layers: list[str]


def _train_epoch(
    model: nn.Module,
    inputs: Sequence[torch.Tensor],
    y: torch.Tensor,
    step: _Optimisation,
    device: torch.device,
    batch_size: int,
    generator: torch.Generator,
) -> tuple[float, float, np.ndarray]:
    """One pass over the training set in a seeded random order.

    Returns the loss and accuracy of the epoch's batches as they were trained (training
    mode, before each step; batch losses weighted by batch size), as Keras and most
    training logs report them, and each layer's gradient norm (before clipping) averaged
    over the epoch's steps.
    """
    model.train()
    order = torch.randperm(len(y), generator=generator)
    total_loss, right, seen, norms, steps = 0.0, 0, 0, 0.0, 0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        if len(idx) < 2:  # batch norm needs two samples
            continue
        batch = [random_shift(x[idx], s, generator)
                 for x, s in zip(inputs, step.shift_voxels, strict=True)]  # fmt: skip
        share, partner = mixup_pairs(len(idx), step.mixup, generator)
        if partner is not None:
            batch = [share * x + (1.0 - share) * x[partner] for x in batch]
        step.optimiser.zero_grad()
        logits = model(*(x.to(device) for x in batch))
        target = y[idx].to(device)
        loss = step.loss_fn(logits, target)
        if partner is not None:
            loss = share * loss + (1.0 - share) * step.loss_fn(logits, target[partner])
        loss.backward()
        norms = norms + _gradient_norms(model, step.layers)
        if step.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), step.grad_clip)
        step.optimiser.step()
        if step.schedule is not None:
            step.schedule.step()
        total_loss += loss.item() * len(idx)
        right += int((logits.argmax(dim=1) == target).sum())
        seen += len(idx)
        steps += 1
    if seen == 0:
        return float("nan"), float("nan"), np.full(len(step.layers), np.nan)
    return total_loss / seen, right / seen, np.asarray(norms) / steps


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Optimiser steps of an epoch over ``n`` subjects (a last batch of one is skipped)."""
    full, rest = divmod(n, batch_size)
    return full + (rest >= 2)


def _optimisation(
    model: nn.Module,
    y_train: np.ndarray,
    settings: TrainSettings,
    device: torch.device,
    shift_voxels: Sequence[int],
) -> _Optimisation:
    """AdamW with class-balanced cross-entropy and the settings' schedule."""
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay
    )
    schedule = None
    if settings.schedule == "onecycle":
        total = max(1, settings.epochs * steps_per_epoch(len(y_train), settings.batch_size))
        schedule = torch.optim.lr_scheduler.OneCycleLR(
            optimiser, max_lr=settings.lr, total_steps=total, pct_start=0.2,
            anneal_strategy="cos", cycle_momentum=False,
        )  # fmt: skip
    return _Optimisation(
        nn.CrossEntropyLoss(weight=class_weights(y_train).to(device)),
        optimiser,
        schedule,
        settings.grad_clip,
        shift_voxels,
        settings.mixup,
        layer_names(model),
    )


def train_network(
    build: Callable[[], nn.Module],
    train_inputs: Sequence[np.ndarray],
    y_train: np.ndarray,
    val_inputs: Sequence[np.ndarray],
    y_val: np.ndarray,
    settings: TrainSettings,
    seed: int,
    initial_state: dict | None = None,
    shift_voxels: Sequence[int] | None = None,
) -> tuple[nn.Module, InputScaler, pd.DataFrame]:
    """Train a classifier with AdamW and class-balanced cross-entropy.

    Parameters
    ----------
    build : callable
        Returns a fresh ``nn.Module`` whose ``forward(*inputs)`` gives (batch, 2) logits;
        called after seeding, so its initial weights follow from ``seed``.
    train_inputs, val_inputs : sequence of numpy.ndarray
        One (n, C, ...) array per model input (e.g. [T1] or [T1, FC]). The validation
        set may be empty.
    y_train, y_val : numpy.ndarray
        (n,) int labels.
    settings : TrainSettings
    seed : int
    initial_state : dict, optional
        ``state_dict`` (possibly partial) loaded before training.
    shift_voxels : sequence of int, optional
        Per input, the largest random shift (voxels) of the volumes in training
        (:func:`random_shift`; 0 for inputs that are not volumes). Default: none.

    Returns
    -------
    model : nn.Module
        On the CPU, in evaluation mode. With ``settings.stopping`` ``fixed`` (or no
        validation subjects), the weights after the last epoch; with ``validation``, those
        of the epoch of lowest validation loss among the epochs from
        ``settings.min_epochs`` on (training stops after ``settings.patience`` epochs
        without a lower one).
    scaler : InputScaler
        Input standardisation fitted on ``train_inputs`` (``settings.scaling``).
    history : pandas.DataFrame
        Per epoch: ``epoch`` (0: before training), ``train_loss`` and ``train_accuracy``
        (of the epoch's batches, in training mode; at epoch 0 the whole training set in
        evaluation mode, so ``train_loss`` there is the loss at initialisation),
        ``validation_loss`` and ``validation_accuracy`` (after the epoch, in evaluation
        mode), ``best`` (1 on the kept epoch), and ``grad_norm:<layer>``, each layer's
        gradient norm averaged over the epoch's steps (:func:`layer_names`).
    """
    seed_everything(seed, settings.threads)
    device = select_device(settings.device)
    model = build()
    if initial_state is not None:
        model.load_state_dict(initial_state, strict=False)
    model.to(device)
    scaler = InputScaler.fit(train_inputs, settings.scaling)
    x_train = scaler.transform(train_inputs)
    x_val = scaler.transform(val_inputs)
    yt = torch.as_tensor(y_train, dtype=torch.long)
    yv = torch.as_tensor(y_val, dtype=torch.long)
    step = _optimisation(model, y_train, settings, device, shift_voxels or [0] * len(x_train))
    weight = step.loss_fn.weight.cpu()
    generator = torch.Generator().manual_seed(seed)
    size = settings.batch_size
    no_grad = np.full(len(step.layers), np.nan)
    rows = [[0, *_loss_and_accuracy(model, x_train, yt, weight, device, size),
             *_loss_and_accuracy(model, x_val, yv, weight, device, size), 0, *no_grad]]  # fmt: skip
    early = settings.stopping == "validation" and len(yv) > 0
    best_loss, best_state, best_epoch, waited = float("inf"), None, 0, 0
    for epoch in range(1, settings.epochs + 1):
        train_loss, train_acc, norms = _train_epoch(
            model, x_train, yt, step, device, size, generator
        )
        val_loss, val_acc = _loss_and_accuracy(model, x_val, yv, weight, device, size)
        rows.append([epoch, train_loss, train_acc, val_loss, val_acc, 0, *norms])
        if not early or epoch < settings.min_epochs:
            continue
        if val_loss < best_loss:
            best_loss, best_epoch, waited = val_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
        if waited >= settings.patience:
            break
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS + [GRAD_PREFIX + n for n in step.layers])
    if best_state is not None:
        model.load_state_dict(best_state)
    history.loc[history.epoch == (best_epoch if best_state is not None else epoch), "best"] = 1
    model.to("cpu").eval()
    return model, scaler, history
