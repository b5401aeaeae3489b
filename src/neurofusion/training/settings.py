"""Training settings from the ``models:`` block of config.yaml."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Everything that determines a fold's training; equal settings, equal predictions.

    Attributes
    ----------
    epochs : int
        Epochs of a deep model (the most, with ``stopping: validation``).
    batch_size : int
        Subjects per mini-batch.
    lr : float
        Peak AdamW learning rate of every deep model not in ``model_lr`` (the one-cycle
        schedule's maximum, or the constant rate).
    model_lr : tuple of (str, float)
        Learning rates of named deep models, overriding ``lr`` (config: ``models.lr``
        given as a mapping, e.g. ``{default: 0.001, fusion: 0.0001}``). A branch
        trained inside ``fusion`` or ``late_fusion`` uses its own model's rate. The
        default, as in the shipped config.yaml, gives ``fusion`` 0.0001 for fine-tuning
        from its trained branches (``models.lr`` in docs/configuration.md).
    weight_decay : float
        AdamW's decoupled weight decay.
    schedule : str
        ``onecycle``: the learning rate warms up over the first 20 % of the steps to
        ``lr`` and anneals to nearly zero by the last (Smith & Topin 2019; cosine);
        ``constant``: ``lr`` throughout.
    grad_clip : float
        Largest L2 norm of all gradients together per step (0: no clipping).
    scaling : str
        Input standardisation of the deep models, fitted on the training subjects:
        ``feature`` (each edge or voxel its own mean and SD) or ``channel``
        (:class:`~neurofusion.training.loop.InputScaler`).
    stopping : str
        ``fixed``: train on the whole training fold (``train`` and ``validation``
        subjects) for ``epochs`` and keep the last; ``validation``: train on ``train``
        and keep the epoch of lowest loss on ``validation`` (early stopping).
    shift_voxels : int
        Largest random shift (voxels, each axis) of the 3D CNN's training volumes
        (augmentation; 0: off).
    connectivity_input : str
        The matrices BrainNetCNN reads, alone and as a fusion branch: ``tangent``,
        tangent-space connectivity around a reference fitted on the training subjects
        (:mod:`~neurofusion.training.tangent`), or ``fisherz``, the Fisher-z correlation
        matrices of the study.
    mixup : float
        Alpha of the Beta distribution of mixup's mixing share (0: off;
        :func:`~neurofusion.training.loop.mixup_pairs`).
    cnn_channels : tuple of int
        Filters of the 3D CNN's four convolution blocks (also in ``early_fusion`` and
        ``fusion``).
    cnn_pooling : str
        The 3D CNN's 2 x 2 x 2 pooling: ``max`` or ``avg``.
    brainnetcnn_channels : tuple of int
        Filters of BrainNetCNN's E2E, E2N and N2G layers (fewer: fewer parameters).
    patience : int
        With ``stopping: validation``: epochs without a lower validation loss before
        training stops (the weights of the best epoch are kept).
    min_epochs : int
        With ``stopping: validation``: epochs trained before early stopping watches the
        validation loss (Keras' ``start_from_epoch``): the kept weights are those of the
        best epoch from ``min_epochs`` on, and training never stops before it.
    seed : int
        Seed of splits, weight initialisation, batch order, dropout and inner CV.
    inner_folds : int
        Inner cross-validation folds inside a training fold (hyper-parameters of the
        linear models, out-of-fold probabilities of late fusion).
    svm_c : tuple of float
        Grid of the regularisation parameter C searched by inner CV.
    late_fusion : str
        How ``late_fusion`` combines its branches: ``mean`` (the mean of their logits) or
        ``stacking`` (a logistic regression on their inner-CV logits).
    fusion_init : str
        ``branches``: start fusion from the fold's trained cnn3d and brainnetcnn;
        ``scratch``: from random weights.
    modality_dropout : float
        Probability that fusion training hides one modality of a subject (per step), so
        that it scores subjects with only one (:class:`~neurofusion.models.FusionNet`).
    device : str
        ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
    threads : int
        torch and BLAS threads.
    """

    epochs: int = 20
    batch_size: int = 16
    lr: float = 1e-3
    model_lr: tuple[tuple[str, float], ...] = (("fusion", 1e-4),)
    weight_decay: float = 1e-2
    schedule: str = "onecycle"
    grad_clip: float = 5.0
    scaling: str = "feature"
    stopping: str = "fixed"
    shift_voxels: int = 1
    connectivity_input: str = "tangent"
    mixup: float = 0.0
    cnn_channels: tuple[int, ...] = (8, 16, 32, 64)
    cnn_pooling: str = "avg"
    brainnetcnn_channels: tuple[int, ...] = (32, 64, 128)
    patience: int = 8
    min_epochs: int = 0
    seed: int = 0
    inner_folds: int = 3
    svm_c: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)
    late_fusion: str = "mean"
    fusion_init: str = "branches"
    modality_dropout: float = 0.2
    device: str = "auto"
    threads: int = 1

    @classmethod
    def from_config(cls, models: Mapping[str, Any], threads: int | None = None) -> TrainSettings:
        """Settings from the ``models:`` block; ``threads`` overrides ``models.threads``."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in models.items() if k in fields}
        values["svm_c"] = tuple(float(c) for c in values.get("svm_c", cls.svm_c))
        for key in ("cnn_channels", "brainnetcnn_channels"):
            values[key] = tuple(int(c) for c in values.get(key, getattr(cls, key)))
        lr = values.get("lr", cls.lr)
        if isinstance(lr, Mapping):
            values["lr"] = float(lr.get("default", cls.lr))
            values["model_lr"] = tuple(
                sorted((name, float(rate)) for name, rate in lr.items() if name != "default")
            )
        elif "lr" in values:  # one number sets every model
            values["model_lr"] = ()
        if threads is not None:
            values["threads"] = int(threads)
        return cls(**values)

    @classmethod
    def training_entries(
        cls, models: Mapping[str, Any], networks: Iterable[str] | None = None
    ) -> dict[str, Any]:
        """The entries of the ``models:`` block that decide a training's result (those
        named like fields of this class, but ``threads``), for Snakemake rule params:
        changing the others (permutations, bootstrap, enabled models, threads) retrains
        nothing.

        With ``networks`` (the deep networks one model's job trains), ``lr`` becomes
        ``{network: rate}`` of those alone, and is left out when there are none: changing
        BrainNetCNN's rate retrains BrainNetCNN and the fusions, not the 3D CNN or the
        linear models.
        """
        fields = {f.name for f in dataclasses.fields(cls)} - {"threads"}
        entries = {k: v for k, v in models.items() if k in fields}
        if networks is not None:
            entries.pop("lr", None)
            rates = cls.from_config(models).learning_rates(networks)
            if rates:
                entries["lr"] = rates
        return entries

    def for_model(self, name: str) -> TrainSettings:
        """The settings of model ``name``'s training: ``lr`` is its learning rate, and
        ``model_lr`` is empty."""
        return dataclasses.replace(self, lr=dict(self.model_lr).get(name, self.lr), model_lr=())

    def learning_rates(self, networks: Iterable[str]) -> dict[str, float]:
        """``{network: peak AdamW learning rate}`` of the deep networks named."""
        return {name: self.for_model(name).lr for name in networks}

    def architecture(self) -> dict[str, Any]:
        """The network shape settings (``cnn_channels``, ``cnn_pooling``,
        ``brainnetcnn_channels``), saved with each trained network so that it can be
        rebuilt (:func:`~neurofusion.training.deep.build_network`)."""
        return {"cnn_channels": list(self.cnn_channels), "cnn_pooling": self.cnn_pooling,
                "brainnetcnn_channels": list(self.brainnetcnn_channels)}  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable copy."""
        return dataclasses.asdict(self)
