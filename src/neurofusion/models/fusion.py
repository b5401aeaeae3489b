"""Intermediate fusion (the study's "network fusion") of the T1 and connectivity branches."""

from __future__ import annotations

import torch
from torch import nn

from neurofusion.models.brainnetcnn import BrainNetCNN
from neurofusion.models.cnn3d import CNN3D


class FusionNet(nn.Module):
    """Both encoders -> concatenated 64 + 64 = 128 features -> FC -> 2 logits.

    Parameters
    ----------
    cnn : CNN3D
        Structural branch (its :meth:`~CNN3D.features` are used, not its output layer).
    brainnet : BrainNetCNN
        Functional branch.

    Shapes
    ------
    ``forward(t1, fc)``: t1 (batch, 1, X, Y, Z), fc (batch, 1, N, N) -> (batch, 2) logits.
    """

    def __init__(self, cnn: CNN3D, brainnet: BrainNetCNN) -> None:
        super().__init__()
        self.cnn = cnn
        self.brainnet = brainnet
        self.out = nn.Linear(cnn.fc.out_features + brainnet.fc.out_features, 2)
        nn.init.xavier_normal_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def features(self, t1: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
        """(batch, 128) fused features: the 64 T1 features, then the 64 connectivity ones."""
        return torch.cat([self.cnn.features(t1), self.brainnet.features(fc)], dim=1)

    def forward(self, t1: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
        """Logits from both modalities (no activation)."""
        return self.out(self.features(t1, fc))
