"""The field's sanity checks of every deep network, on 16 synthetic subjects: the loss at
initialisation is ln 2 for two balanced classes, and the network can fit (memorise) its
training set. A network that fails either is broken, whatever its cross-validated score."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from neurofusion.training.cohort import Cohort, assemble_cohort
from neurofusion.training.deep import deep_inputs, fit_inputs, network_builder
from neurofusion.training.history import GRAD_PREFIX
from neurofusion.training.loop import predict_proba, train_network
from neurofusion.training.settings import TrainSettings
from neurofusion.training.synthetic import write_synthetic_cohort

NETWORKS = ("cnn3d", "brainnetcnn", "fusion", "early_fusion")
#: The shipped training recipe, long enough for 16 subjects in batches of 8.
SETTINGS = TrainSettings(epochs=40, batch_size=8, threads=2)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Cohort:
    """16 subjects (8 per group), no planted effect: fitting them is memorising them."""
    root = tmp_path_factory.mktemp("sanity")
    write_synthetic_cohort(root, n_per_group=8, effect_size=0.0, resolution_mm=6, n_volumes=80)
    assemble_cohort(root / "rawdata" / "participants.tsv", root / "qc" / "exclusions.tsv",
                    root / "derivatives", root / "models" / "cohort", "StD", ["T1w", "bold"],
                    resolution_mm=8)  # fmt: skip
    return Cohort(Path(root) / "models" / "cohort")


def _train(name: str, cohort: Cohort):
    rows = np.arange(len(cohort.ids))
    inputs = [x[rows] for x in fit_inputs(deep_inputs(name, cohort, "tangent"), rows)]
    none = [x[:0] for x in inputs]
    model, scaler, history = train_network(
        network_builder(name, cohort), inputs, cohort.labels, none, cohort.labels[:0], SETTINGS, 0
    )
    guess = predict_proba(model, scaler.transform(inputs), torch.device("cpu")) >= 0.5
    return history, float((guess == cohort.labels).mean())


@pytest.mark.parametrize("name", NETWORKS)
def test_network_starts_at_chance_and_fits_16_subjects(name, cohort):
    assert np.bincount(cohort.labels).tolist() == [8, 8]
    history, accuracy = _train(name, cohort)
    start = history[history.epoch == 0].iloc[0]
    assert abs(start.train_loss - math.log(2)) < 0.1, start.train_loss
    assert accuracy >= 0.95, history[["epoch", "train_loss", "train_accuracy"]].to_string()
    assert history.train_loss.iloc[-1] < 0.5 * math.log(2)
    assert history.train_loss.max() < 2  # no divergence (the previous recipe reached 12.5)
    # Every layer receives gradient from the first epoch (none is dead or detached), but
    # the fusion's branches' own output layers, which its forward pass does not use.
    used = [
        c
        for c in history
        if c.startswith(GRAD_PREFIX) and not c.endswith(("cnn.out", "brainnet.out"))
    ]
    norms = history.loc[history.epoch == 1, used]
    assert norms.shape[1] >= 4 and (norms.to_numpy() > 0).all(), norms.to_string()
