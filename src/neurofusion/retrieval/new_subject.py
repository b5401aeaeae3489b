"""A subject who is not in the cohort: embedded by the library's final model, answered with
its nearest cohort subjects.

The inputs are the pipeline's own outputs for that subject: the T1w in MNI space
(``anat``: ``*_space-MNI152NLin2009aSym_res-2_desc-preproc_T1w.nii.gz``, with its brain
mask) and the region time series (``connectome``: ``*_timeseries.tsv``; the Fisher-z matrix
``*_stat-fisherz_relmat.tsv`` for a model trained with ``connectivity_input: fisherz``).
They are prepared exactly as cohort assembly prepares a cohort subject's
(:func:`~neurofusion.training.cohort.cnn_t1`,
:func:`~neurofusion.training.cohort.read_fisherz`), on the grids and regions stored with
the final model, then embedded by it; the gallery is every cohort subject embedded by the
same model (fold :data:`~neurofusion.retrieval.library.FINAL_FOLD`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from neurofusion import templates
from neurofusion.errors import NeurofusionError
from neurofusion.retrieval.embed import restore
from neurofusion.retrieval.library import FINAL_FOLD, read_entries, read_final_model
from neurofusion.retrieval.search import nearest, neighbours_table
from neurofusion.training.cohort import Cohort, cnn_t1, load_image, read_fisherz, read_timeseries
from neurofusion.training.deep import build_network
from neurofusion.training.tangent import tangent_matrix

#: Who a new subject is in error messages (InputError names subjects ``sub-<label>``).
NEW_SUBJECT = "sub-new"
#: Which images each encoder reads (fusion: at least one of them).
INPUTS = {"cnn3d": ("t1",), "brainnetcnn": ("connectome",), "fusion": ("t1", "connectome")}
_T1_FIX = "give the anat stage's *_space-MNI152NLin2009aSym_res-2_desc-preproc_T1w.nii.gz"


def final_model_inputs(cohort: Cohort) -> dict:
    """What preparing a new subject like the cohort's needs (JSON-serialisable).

    Returns
    -------
    dict
        With a T1: ``source_affine`` (4, 4) and ``source_shape`` of the MNI grid the T1 is
        read on, ``cnn_affine`` and ``cnn_shape`` of the 3D-CNN grid; with BOLD:
        ``regions`` (the connectivity matrices' region names, in order).
    """
    keys = []
    if "T1w" in cohort.modalities:
        keys += ["source_affine", "source_shape", "cnn_affine", "cnn_shape"]
    if "bold" in cohort.modalities:
        keys.append("regions")
    missing = [key for key in keys if key not in cohort.parameters]
    if missing:
        raise NeurofusionError(
            f"{cohort.root / 'provenance.json'} lacks {missing}: the cohort was assembled by "
            f"an older neurofusion; delete {cohort.root} and run the workflow again"
        )
    return {key: cohort.parameters[key] for key in keys}


def _image_on_grid(path: str | Path, inputs: dict, fix: str) -> np.ndarray:
    """A 3D image's data (:func:`~neurofusion.training.cohort.load_image`); InputError
    unless it lies on the cohort's MNI grid."""
    grid = (np.asarray(inputs["source_affine"]), tuple(inputs["source_shape"]))
    return load_image(NEW_SUBJECT, Path(path), grid, fix, fix)[0]


def prepare_t1(t1: str | Path, inputs: dict, mask: str | Path | None = None) -> np.ndarray:
    """A new subject's MNI T1 on the 3D-CNN grid, as cohort assembly makes it.

    Parameters
    ----------
    t1 : path
        T1w in MNI space on the cohort's grid (the anat stage's output).
    inputs : dict
        :func:`final_model_inputs` of the cohort.
    mask : path, optional
        The subject's brain mask on the same grid (the anat stage's
        ``*_space-MNI152NLin2009aSym_res-2_desc-brain_mask.nii.gz``); default: the
        template's brain mask, which leaves the T1's z-scoring slightly different from
        the cohort's.

    Returns
    -------
    numpy.ndarray
        (X, Y, Z) float32 on ``inputs["cnn_shape"]``.
    """
    data = _image_on_grid(t1, inputs, _T1_FIX)
    if mask is None:
        brain = np.asarray(templates.mni_brain_mask(2).dataobj, dtype=np.float32)
        if brain.shape != data.shape:
            raise NeurofusionError(
                "the template's brain mask is not on the cohort's grid; give --mask"
            )
    else:
        brain = _image_on_grid(mask, inputs, "give the mask of the same --t1")
    return cnn_t1(
        data,
        brain,
        np.asarray(inputs["source_affine"]),
        np.asarray(inputs["cnn_affine"]),
        inputs["cnn_shape"],
    )


def prepare_connectome(connectome: str | Path | None, inputs: dict, state=None) -> np.ndarray:
    """A new subject's (1, 1, N, N) connectivity input, as the final model read the
    cohort's: the Fisher-z matrix (``*_stat-fisherz_relmat.tsv``), or, for a model trained
    with ``models.connectivity_input: tangent`` (``state`` holds its reference), the
    tangent matrix of the region time series (``*_timeseries.tsv``); zeros without one."""
    n = len(inputs["regions"])
    if connectome is None:
        return np.zeros((1, 1, n, n), np.float32)
    path = Path(connectome)
    if state is None:
        matrix = read_fisherz(NEW_SUBJECT, path, inputs["regions"]).to_numpy()
    elif not path.name.endswith("_timeseries.tsv"):
        raise NeurofusionError(
            f"{path}: this model reads tangent-space connectivity (models.connectivity_input:"
            " tangent), computed from the region time series; give the connectivity "
            "stage's *_timeseries.tsv of the subject as --connectome"
        )
    else:
        matrix = tangent_matrix(
            read_timeseries(NEW_SUBJECT, path, n), np.asarray(state["whitening"])
        )
    return matrix.astype(np.float32).reshape(1, 1, n, n)


@torch.no_grad()
def embed_new_subject(
    library: str | Path,
    model: str,
    t1: str | Path | None = None,
    connectome: str | Path | None = None,
    mask: str | Path | None = None,
) -> np.ndarray:
    """Features of a new subject from the library's final ``model``.

    ``cnn3d`` needs ``t1``, ``brainnetcnn`` needs ``connectome``; ``fusion`` takes both, or
    either alone (the absent modality's features are zero, as for a cohort subject
    without it).

    Returns
    -------
    numpy.ndarray
        (dim,) float32: 64 values for ``cnn3d`` and ``brainnetcnn``, 128 for ``fusion``.

    Raises
    ------
    NeurofusionError
        No final model of ``model`` in the library, or the images it needs not given.
    InputError
        An image that is not the pipeline's output for this cohort (grid, regions).
    """
    if model not in INPUTS:
        raise NeurofusionError(f"--model must be one of {sorted(INPUTS)}, not {model!r}")
    given = {"t1": t1, "connectome": connectome}
    needed = INPUTS[model]
    if all(given[name] is None for name in needed) or (
        model != "fusion" and given[needed[0]] is None
    ):
        options = " and/or ".join(f"--{name}" for name in needed)
        raise NeurofusionError(f"model {model} embeds a new subject from {options}; give it")
    artefact, inputs = read_final_model(library, model)
    arrays = []
    if "t1" in needed:
        shape = (1, 1, *inputs["cnn_shape"])
        arrays.append(
            np.zeros(shape, np.float32)
            if t1 is None
            else prepare_t1(t1, inputs, mask).reshape(shape)
        )
    if "connectome" in needed:
        states = artefact.get("inputs") or [None] * len(needed)
        arrays.append(prepare_connectome(connectome, inputs, states[needed.index("connectome")]))
    network = build_network(
        model,
        t1_shape=inputs.get("cnn_shape"),
        n_regions=len(inputs.get("regions", [])) or None,
        architecture=artefact.get("architecture"),
    )
    scaler = restore(network, artefact)
    return network.features(*scaler.transform(arrays))[0].numpy().astype(np.float32)


def search_new_subject(
    library: str | Path,
    model: str,
    k: int,
    t1: str | Path | None = None,
    connectome: str | Path | None = None,
    mask: str | Path | None = None,
) -> pd.DataFrame:
    """The ``k`` cohort subjects nearest to a new subject (see :func:`embed_new_subject`).

    Returns
    -------
    pandas.DataFrame
        As :func:`~neurofusion.retrieval.search.search_subject`; ``attrs`` holds ``fold``
        (:data:`FINAL_FOLD`) and ``query_group`` (``unknown``).
    """
    vector = embed_new_subject(library, model, t1, connectome, mask)
    gallery = read_entries(library, model, FINAL_FOLD)
    indices, distance = nearest(vector, gallery.vectors, k)
    table = neighbours_table(gallery, indices, distance)
    table.attrs.update(fold=FINAL_FOLD, query_group="unknown")
    return table
