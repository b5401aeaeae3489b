"""The connectivity matrix figure of one subject."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

#: Most regions whose names are written along the axes (beyond that they are unreadable).
MAX_LABELS = 120


def matrix_figure(
    matrix: np.ndarray, names: Sequence[str], title: str, out_png: str | Path
) -> None:
    """A correlation matrix in atlas order, colour scale -1 to 1, regions named.

    Plain matplotlib, names on the rows only (columns are numbered): text is what costs,
    and nilearn's ``plot_matrix`` with 232 named ticks took 8 s per subject.

    Parameters
    ----------
    matrix : numpy.ndarray
        Shape (n, n), values in [-1, 1].
    names : sequence of str
        Region names (row labels, written when there are at most :data:`MAX_LABELS`).
    title : str
        Figure title.
    out_png : path
        Where the PNG goes.
    """
    fig = plt.figure(figsize=(9, 8.5))
    ax = fig.add_axes((0.12, 0.1, 0.72, 0.8))
    image = ax.imshow(matrix, vmin=-1, vmax=1, cmap="RdBu_r", interpolation="nearest")
    fig.colorbar(image, cax=fig.add_axes((0.87, 0.1, 0.025, 0.8)), label="r")
    if len(names) <= MAX_LABELS:
        ax.set_yticks(np.arange(len(names)), labels=list(names), fontsize=3)
    ax.set_xlabel("region (atlas order)")
    ax.set_title(title)
    fig.savefig(out_png, dpi=150)
    plt.close(fig)
