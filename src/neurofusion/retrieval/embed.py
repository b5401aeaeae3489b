"""Every subject embedded by each fold's trained encoder: the rows of the feature library.

The encoders are the study's networks with their output layer left off: ``cnn3d`` and
``brainnetcnn`` give 64 features (:meth:`CNN3D.features`, :meth:`BrainNetCNN.features`),
``fusion`` the 128 concatenated ones (:meth:`FusionNet.features`). Fold k's model embeds
fold k's subjects only: its test subjects become queries, its training and validation
subjects the gallery (:func:`~neurofusion.retrieval.library.fold_entries`), so a query is
never embedded by a model that saw it. Inputs are standardised with the scaler fitted on
the fold's training subjects, saved with the weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from neurofusion.retrieval.library import Entries, fold_entries
from neurofusion.training.cohort import Cohort
from neurofusion.training.deep import network_builder, restored_inputs
from neurofusion.training.features import upper_triangle
from neurofusion.training.loop import InputScaler
from neurofusion.training.splits import read_split

#: Models whose learned features go into the library, with their feature length.
ENCODERS = {"cnn3d": 64, "brainnetcnn": 64, "fusion": 128}


def restore(network: torch.nn.Module, artefact: Mapping) -> InputScaler:
    """Load a saved ``model.pt``'s weights into ``network`` and switch it to evaluation mode
    (dropout off, batch-norm running statistics); returns the saved input scaling."""
    network.load_state_dict(artefact["state_dict"])
    network.eval()
    return InputScaler.from_state(artefact["scaler"])


@torch.no_grad()
def embed(
    model: str,
    artefact: Mapping,
    cohort: Cohort,
    participant_ids: Sequence[str],
    batch_size: int = 16,
) -> np.ndarray:
    """Features of the given subjects from one trained network, on the CPU.

    Parameters
    ----------
    model : str
        A key of :data:`ENCODERS`.
    artefact : mapping
        The fold's saved ``model.pt``: ``state_dict`` and the input ``scaler``.
    cohort : Cohort
        The assembled cohort (its arrays feed the network).
    participant_ids : sequence of str
        Whom to embed, in output order.
    batch_size : int
        Subjects per forward pass (memory only; the result does not depend on it).

    Returns
    -------
    numpy.ndarray
        Shape (len(participant_ids), ENCODERS[model]), float32.
    """
    network = network_builder(model, cohort, architecture=artefact.get("architecture"))()
    scaler = restore(network, artefact)
    rows = cohort.indices(participant_ids)
    inputs = restored_inputs(model, cohort, artefact)
    batches = [
        network.features(*scaler.transform([x[rows[start : start + batch_size]] for x in inputs]))
        for start in range(0, len(rows), batch_size)
    ]
    return torch.cat(batches).numpy().astype(np.float32)


def fold_library(
    model: str,
    fold: int,
    model_file: str | Path,
    split_file: str | Path,
    cohort: Cohort,
    participants: pd.DataFrame | None = None,
) -> Entries:
    """Library entries of one (model, fold): its split's subjects embedded by its network.

    Only subjects with every modality of the cohort enter, so that all feature sets
    (and the raw-feature baselines) rank the same people.

    Parameters
    ----------
    model : str
        A key of :data:`ENCODERS`.
    fold : int
        Split index k.
    model_file : path
        The fold's ``model.pt``.
    split_file : path
        The fold's split TSV (``participant_id``, ``group``, ``role``).
    cohort : Cohort
    participants : pandas.DataFrame, optional
        participants.tsv, whose other columns become the entries' metadata.
    """
    split = cohort.keep(read_split(split_file), cohort.complete)
    artefact = torch.load(model_file, map_location="cpu", weights_only=True)
    vectors = embed(model, artefact, cohort, split["participant_id"].tolist())
    return fold_entries(model, fold, split, vectors, participants)


def raw_features(cohort: Cohort) -> dict[str, np.ndarray]:
    """The raw-feature baselines of the cohort's modalities, one row per cohort subject
    (array order).

    Returns
    -------
    dict
        ``connectivity`` (with BOLD): (n, N (N - 1) / 2) upper triangle of the Fisher-z
        matrices; ``t1`` (with a T1w): (n, voxels) the T1 on the 3D-CNN's grid
        (``models.cnn_resolution_mm``, 4 mm by default), flattened.
    """
    features = {}
    if "bold" in cohort.modalities:
        features["connectivity"] = upper_triangle(np.asarray(cohort.array("fc"), np.float64))
    if "T1w" in cohort.modalities:
        t1 = cohort.array("t1")
        features["t1"] = np.asarray(t1, dtype=np.float64).reshape(len(t1), -1)
    return features
