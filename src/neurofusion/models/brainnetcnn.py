"""BrainNetCNN (Kawahara et al., NeuroImage 2017) for connectivity matrices.

Layers, as in the study: edge-to-edge (E2E) -> edge-to-node (E2N) -> node-to-graph (N2G)
-> dropout -> fully connected -> 64 features -> fully connected -> 2 logits, with leaky
ReLU (slope 0.33) after every hidden layer and no activation on the logits.

Three faults of popular PyTorch ports are avoided on purpose:

* dropout is an ``nn.Dropout`` module, so ``model.eval()`` switches it off (the ports call
  ``F.dropout(x, training=True)``, which keeps dropping at test time);
* the logits are returned as they are (the ports put a leaky ReLU on the output layer,
  which clips negative logits and hence the softmax);
* initialisation accounts for the E2E filter's true fan-in: each E2E output sums a row
  and a column, ``2 N C_in`` inputs, not the ``N C_in`` of either convolution alone.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from neurofusion.models.init import init_output_

#: Negative slope of every leaky ReLU (Kawahara et al.).
LEAKY_SLOPE = 0.33
#: Size of the feature vector the fusion network concatenates.
FEATURES = 64


def _kaiming_(weight: torch.Tensor, fan_in: int, slope: float = LEAKY_SLOPE) -> None:
    """He-normal initialisation for a leaky ReLU of ``slope`` with an explicit fan-in."""
    gain = math.sqrt(2.0 / (1.0 + slope**2))
    with torch.no_grad():
        weight.normal_(0.0, gain / math.sqrt(fan_in))


def row_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(x)`` for a 1 x N kernel, computed as one matrix product.

    Equal to the convolution (float rounding aside) and about 4 times faster on the CPU,
    where torch's convolution handles a kernel as wide as the input poorly.

    Shapes
    ------
    x (B, C, N, N), ``conv.weight`` (O, C, 1, N) -> (B, O, N, 1): one value per row i,
    ``sum_c,k w[o, c, 0, k] x[b, c, i, k] + bias[o]``.
    """
    b, c, n, k = x.shape
    weight = conv.weight.reshape(conv.out_channels, c * k)
    out = F.linear(x.permute(0, 2, 1, 3).reshape(b, n, c * k), weight, conv.bias)
    return out.permute(0, 2, 1).unsqueeze(-1)


def col_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(x)`` for an N x 1 kernel, as one matrix product (see :func:`row_conv`).

    Shapes
    ------
    x (B, C, N, M), ``conv.weight`` (O, C, N, 1) -> (B, O, 1, M): one value per column j,
    ``sum_c,k w[o, c, k, 0] x[b, c, k, j] + bias[o]``.
    """
    b, c, k, m = x.shape
    weight = conv.weight.reshape(conv.out_channels, c * k)
    out = F.linear(x.permute(0, 3, 1, 2).reshape(b, m, c * k), weight, conv.bias)
    return out.permute(0, 2, 1).unsqueeze(2)


class E2E(nn.Module):
    """Edge-to-edge filter: a 1 x N row and an N x 1 column convolution, summed.

    ``out[c, i, j] = sum_k,d row[c, d, k] x[d, i, k] + col[c, d, k] x[d, k, j] + b[c]``.

    Parameters
    ----------
    in_channels, out_channels : int
    n_nodes : int
        N, the matrix size (116 for AAL).

    Shapes
    ------
    (batch, in_channels, N, N) -> (batch, out_channels, N, N)
    """

    def __init__(self, in_channels: int, out_channels: int, n_nodes: int) -> None:
        super().__init__()
        self.row = nn.Conv2d(in_channels, out_channels, (1, n_nodes), bias=True)
        self.col = nn.Conv2d(in_channels, out_channels, (n_nodes, 1), bias=False)
        fan_in = 2 * n_nodes * in_channels
        _kaiming_(self.row.weight, fan_in)
        _kaiming_(self.col.weight, fan_in)
        nn.init.zeros_(self.row.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # row: (B, C, N, 1), one value per row i; col: (B, C, 1, N), one per column j.
        return row_conv(x, self.row) + col_conv(x, self.col)


class BrainNetCNN(nn.Module):
    """E2E -> E2N -> N2G -> dropout -> FC -> 64 -> FC -> 2.

    Parameters
    ----------
    n_nodes : int
        Matrix size N (116 for AAL-116).
    e2e_channels, e2n_channels, n2g_channels : int
        Filters of each convolution layer.
    dropout : float
        Dropout probability after N2G (training only).

    Shapes
    ------
    Input (batch, 1, N, N) Fisher-z matrices; :meth:`features` gives (batch, 64) and
    :meth:`forward` (batch, 2) logits.
    """

    def __init__(
        self,
        n_nodes: int = 116,
        e2e_channels: int = 32,
        e2n_channels: int = 64,
        n2g_channels: int = 128,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.n_nodes = n_nodes
        self.e2e = E2E(1, e2e_channels, n_nodes)
        self.e2n = nn.Conv2d(e2e_channels, e2n_channels, (1, n_nodes))
        self.n2g = nn.Conv2d(e2n_channels, n2g_channels, (n_nodes, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(n2g_channels, FEATURES)
        self.out = nn.Linear(FEATURES, 2)
        self.act = nn.LeakyReLU(LEAKY_SLOPE)
        for layer, fan_in in (
            (self.e2n, e2e_channels * n_nodes),
            (self.n2g, e2n_channels * n_nodes),
            (self.fc, n2g_channels),
        ):
            _kaiming_(layer.weight, fan_in)
            nn.init.zeros_(layer.bias)
        init_output_(self.out)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 1, N, N) -> (batch, 64) features (after the leaky ReLU)."""
        h = self.act(self.e2e(x))  # (B, e2e, N, N)
        h = self.act(row_conv(h, self.e2n))  # (B, e2n, N, 1)
        h = self.act(col_conv(h, self.n2g))  # (B, n2g, 1, 1)
        h = self.dropout(h.flatten(1))
        return self.act(self.fc(h))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, 1, N, N) -> (batch, 2) logits (no activation)."""
        return self.out(self.features(x))
