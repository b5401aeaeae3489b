"""A deep model's training history (``history.tsv``) and what its provenance says of it.

Kept free of torch, so that the jobs of the linear models do not load it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from neurofusion.training.settings import TrainSettings

#: Columns of a training history, before the per-layer gradient norms.
HISTORY_COLUMNS = [
    "epoch",
    "train_loss",
    "train_accuracy",
    "validation_loss",
    "validation_accuracy",
    "best",
]
#: Prefix of the history columns holding a layer's mean gradient norm over an epoch.
GRAD_PREFIX = "grad_norm:"


def training_summary(history: pd.DataFrame, settings: TrainSettings) -> dict:
    """What a run's provenance says of its training: ``initial_loss`` (epoch 0),
    ``epochs_run``, ``kept_epoch``, the training and validation loss and accuracy there,
    and ``kept_because`` (which rule chose it)."""
    start = history[history.epoch == 0]
    kept = history[history.best == 1]
    rule = (
        f"lowest validation loss from epoch {max(1, settings.min_epochs)} on "
        f"(stopping: validation, patience {settings.patience})"
        if settings.stopping == "validation" and history.validation_loss.notna().any()
        else f"last epoch of a fixed schedule (stopping: {settings.stopping}, "
        f"{settings.epochs} epochs, {settings.schedule} learning rate)"
    )
    row = kept.iloc[0] if len(kept) else history.iloc[-1]

    def value(x: float) -> float | None:
        return None if np.isnan(x) else round(float(x), 6)

    return {
        "initial_loss": value(start.train_loss.iloc[0]) if len(start) else None,
        "epochs_run": int(history.epoch.max()),
        "kept_epoch": int(row.epoch),
        "kept_because": rule,
        **{key: value(row[key]) for key in HISTORY_COLUMNS[1:5]},
    }
