"""Figures of the evaluation: ROC curves, confusion matrices, learning curves."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from neurofusion.evaluation.metrics import auc, confusion
from neurofusion.fileio import atomic_path


def save_figure(fig, path: str | Path) -> None:
    """Write a matplotlib figure atomically (PNG, 120 dpi) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)


def roc_figure(predictions: Mapping[str, pd.DataFrame], path: str | Path) -> None:
    """Out-of-fold ROC curves of every model in one axes, AUC in the legend."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, table in predictions.items():
        fpr, tpr, _ = roc_curve(table["label"], table["probability"])
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc(table['label'], table['probability']):.2f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.01))
    ax.set_title("Out-of-fold ROC curves")
    ax.legend(fontsize=7, loc="lower right")
    save_figure(fig, path)


def confusion_figure(
    predictions: Mapping[str, pd.DataFrame], class_names: tuple[str, str], path: str | Path
) -> None:
    """One 2 x 2 confusion matrix (rows truth, columns prediction) per model."""
    n = len(predictions)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (name, table) in zip(axes.flat, predictions.items(), strict=False):
        c = confusion(table["label"], table["prediction"])
        matrix = np.array([[c["tn"], c["fp"]], [c["fn"], c["tp"]]])
        ax.imshow(matrix, cmap="Blues", vmin=0)
        for (i, j), value in np.ndenumerate(matrix):
            colour = "white" if value > matrix.max() / 2 else "black"
            ax.text(j, i, str(value), ha="center", va="center", color=colour)
        ax.set_xticks([0, 1], class_names, fontsize=8)
        ax.set_yticks([0, 1], class_names, fontsize=8)
        ax.set(xlabel="predicted", ylabel="true", title=name)
    fig.tight_layout()
    save_figure(fig, path)


def learning_curves_figure(histories: Mapping[str, pd.DataFrame], path: str | Path) -> None:
    """Training diagnostics of the deep models, one column per model.

    Top: training and validation loss per epoch of every fold, from epoch 0 (the loss at
    initialisation; the dotted line is ln 2, where two balanced classes start), with the
    kept epoch of each fold marked. Bottom: each layer's gradient norm per epoch in fold 0
    (log scale; ``grad_norm:<layer>`` columns), where vanishing or exploding gradients
    show. ``histories[model]`` holds the concatenated ``history.tsv`` files with a
    ``fold`` column.
    """
    n = max(1, len(histories))
    fig, axes = plt.subplots(2, n, figsize=(4 * n, 6.0), squeeze=False)
    for k, (name, table) in enumerate(histories.items()):
        ax, grad_ax = axes[0, k], axes[1, k]
        for fold, curve in table.groupby("fold"):
            label = "train / validation" if fold == table["fold"].min() else None
            ax.plot(curve["epoch"], curve["train_loss"], color="C0", alpha=0.5, label=label)
            ax.plot(curve["epoch"], curve["validation_loss"], color="C1", alpha=0.5)
            best = curve[curve["best"] == 1]
            kept = best["validation_loss"].fillna(best["train_loss"])
            ax.plot(best["epoch"], kept, "k.", markersize=4)
        ax.axhline(np.log(2), color="grey", linestyle=":", linewidth=1)
        ax.set(xlabel="epoch", ylabel="cross-entropy", title=name)
        first = table[table["fold"] == table["fold"].min()]
        for column in (c for c in first if c.startswith("grad_norm:")):
            grad_ax.plot(first["epoch"], first[column], alpha=0.7, linewidth=1,
                         label=column.removeprefix("grad_norm:"))  # fmt: skip
        grad_ax.set(xlabel="epoch", ylabel="gradient norm (fold 0)")
        if grad_ax.lines:
            grad_ax.set_yscale("log")
            grad_ax.legend(fontsize=5, ncol=2)
    if not histories:
        for ax in axes.flat:
            ax.axis("off")
        axes.flat[0].text(0.5, 0.5, "no deep model trained", ha="center", va="center")
    fig.tight_layout()
    save_figure(fig, path)
