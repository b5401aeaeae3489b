"""Torch modules: the 3D CNN, BrainNetCNN and their intermediate fusion."""

from neurofusion.models.brainnetcnn import E2E, BrainNetCNN
from neurofusion.models.cnn3d import CNN3D
from neurofusion.models.fusion import FusionNet

__all__ = ["CNN3D", "E2E", "BrainNetCNN", "FusionNet"]
