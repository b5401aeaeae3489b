"""Intermediate fusion (the study's "network fusion") of the T1 and connectivity branches."""

from __future__ import annotations

import torch
from torch import nn

from neurofusion.models.brainnetcnn import BrainNetCNN
from neurofusion.models.cnn3d import CNN3D
from neurofusion.models.init import init_output_


class FusionNet(nn.Module):
    """Both encoders -> concatenated 64 + 64 = 128 features -> FC -> 2 logits.

    A subject without one modality comes with that input all zeros (see
    :class:`~neurofusion.training.loop.InputScaler`); that branch's 64 features are set
    to zero, so the output layer decides from the other branch alone. Modality dropout
    (ModDrop, Neverova et al. 2016) trains for this: in training mode, each subject with
    both modalities loses one of them (either with equal chance) with probability
    ``modality_dropout``.

    Parameters
    ----------
    cnn : CNN3D
        Structural branch (its :meth:`~CNN3D.features` are used, not its output layer).
    brainnet : BrainNetCNN
        Functional branch.
    modality_dropout : float
        Probability, per subject and training step, of hiding one modality (0 = off).

    Shapes
    ------
    ``forward(t1, fc)``: t1 (batch, 1, X, Y, Z), fc (batch, 1, N, N) -> (batch, 2) logits.
    """

    def __init__(self, cnn: CNN3D, brainnet: BrainNetCNN, modality_dropout: float = 0.0) -> None:
        super().__init__()
        self.cnn = cnn
        self.brainnet = brainnet
        self.modality_dropout = float(modality_dropout)
        self.out = nn.Linear(cnn.fc.out_features + brainnet.fc.out_features, 2)
        init_output_(self.out)

    def presence(self, t1: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
        """(batch, 2) float: 1 where the subject has the T1 (column 0) or connectivity
        (column 1); in training mode, modality dropout hides one of two present ones."""
        present = torch.stack(
            [t1.flatten(1).ne(0).any(dim=1), fc.flatten(1).ne(0).any(dim=1)], dim=1
        )
        if self.training and self.modality_dropout > 0:
            draw = torch.rand(len(t1), device=t1.device)
            both = present.all(dim=1)
            half = self.modality_dropout / 2
            hide = torch.stack([draw < half, (draw >= half) & (draw < 2 * half)], dim=1)
            present = present & ~(hide & both[:, None])
        return present.to(t1.dtype)

    def features(self, t1: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
        """(batch, 128) fused features: the 64 T1 features, then the 64 connectivity ones
        (zero for an absent or dropped modality)."""
        present = self.presence(t1, fc)
        return torch.cat(
            [self.cnn.features(t1) * present[:, :1], self.brainnet.features(fc) * present[:, 1:]],
            dim=1,
        )

    def forward(self, t1: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
        """Logits from both modalities (no activation)."""
        return self.out(self.features(t1, fc))
