"""Initialisation shared by the networks."""

from __future__ import annotations

from torch import nn

#: SD of the output layer's initial weights: small, so the first logits are near zero.
OUTPUT_INIT_SD = 0.01


def init_output_(layer: nn.Linear) -> None:
    """Initialise a network's logit layer so that training starts at chance.

    Weights N(0, :data:`OUTPUT_INIT_SD`) and zero bias make both logits nearly 0, so the
    softmax starts near 0.5 for every subject and the cross-entropy at initialisation is
    ln 2 for two balanced classes, the check of Karpathy's "recipe for training neural
    networks". Gradients still reach every layer from the first step.
    """
    nn.init.normal_(layer.weight, 0.0, OUTPUT_INIT_SD)
    nn.init.zeros_(layer.bias)
