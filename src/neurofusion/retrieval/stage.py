"""The workflow's retrieval stage (target ``retrieval``): library, scores, figure.

After cross-validation, every subject of each fold is embedded by that fold's
``cnn3d``, ``brainnetcnn`` and ``fusion`` networks (:mod:`.embed`) into one SQLite feature
library. Retrieval is then scored fold by fold (the fold's test subjects query the fold's
training subjects), for the learned features and for two raw-feature baselines: the
connectivity upper triangle and the T1 on the 3D-CNN's grid, each z-scored with the
gallery's statistics only. The final models (trained on every subject) add every subject as
gallery of fold :data:`~neurofusion.retrieval.library.FINAL_FOLD`, and themselves, so that
``neurofusion retrieve --t1/--connectome`` can embed a new subject (:mod:`.new_subject`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from neurofusion.bids.participants import load_participants
from neurofusion.evaluation.figures import save_figure
from neurofusion.fileio import atomic_path, write_json
from neurofusion.provenance import provenance_record
from neurofusion.retrieval.embed import fold_library, raw_features
from neurofusion.retrieval.evaluate import (
    compare_maps,
    gallery_standardised,
    library_folds_entries,
    ranked_relevance,
    retrieval_scores,
    summarise,
)
from neurofusion.retrieval.library import FINAL_FOLD, write_library
from neurofusion.retrieval.metrics import precision_at_k, recall_at_k
from neurofusion.retrieval.new_subject import final_model_inputs
from neurofusion.training.cohort import Cohort
from neurofusion.training.splits import read_split


def retrieval_outputs(folder: str | Path) -> dict[str, Path]:
    """Files of the retrieval stage under ``folder`` (``results/retrieval``)."""
    folder = Path(folder)
    return {
        "library": folder / "library.sqlite",
        "scores": folder / "scores.tsv",
        "summary": folder / "summary.tsv",
        "comparisons": folder / "comparisons.tsv",
        "figure": folder / "precision_recall.png",
        "provenance": folder / "retrieval_provenance.json",
    }


def _fold_sets(
    library: Path, models: Sequence[str], cohort: Cohort, split_files: Sequence[Path]
) -> Iterator[tuple[str, int, pd.DataFrame, np.ndarray, np.ndarray, list[str]]]:
    """Per feature set and fold: its name, the fold, the queries' ``participant_id`` and
    ``group`` table, the query vectors (n_queries, dim), the gallery vectors
    (n_gallery, dim) and the gallery's groups."""
    for model in models:
        for fold, queries, gallery in library_folds_entries(library, model):
            table = pd.DataFrame(
                {"participant_id": list(queries.participant_ids), "group": list(queries.groups)}
            )
            yield model, fold, table, queries.vectors, gallery.vectors, list(gallery.groups)
    raw = raw_features(cohort)
    for fold, split_file in enumerate(split_files):
        split = cohort.keep(read_split(split_file), cohort.complete)
        test = (split["role"] == "test").to_numpy()
        query_rows = cohort.indices(split.loc[test, "participant_id"].tolist())
        gallery_rows = cohort.indices(split.loc[~test, "participant_id"].tolist())
        table = split.loc[test, ["participant_id", "group"]].reset_index(drop=True)
        gallery_groups = split.loc[~test, "group"].tolist()
        for name, features in raw.items():
            query, gallery = gallery_standardised(features[query_rows], features[gallery_rows])
            yield f"raw_{name}", fold, table, query, gallery, gallery_groups


def precision_recall_figure(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]], prior: float, path
) -> None:
    """Mean precision@k against mean recall@k (k = 1 ... gallery size), one line per
    feature set; the dotted line is the class prior (a random ranking's precision)."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, (precision, recall) in curves.items():
        ax.plot(recall, precision, label=name, linestyle="--" if name.startswith("raw") else "-")
    ax.axhline(prior, color="grey", linestyle=":", linewidth=1)
    ax.set(xlabel="recall@k", ylabel="precision@k", xlim=(0, 1), ylim=(0, 1.01))
    ax.set_title("Same-group retrieval, out of fold")
    ax.legend(fontsize=7, loc="lower left")
    save_figure(fig, path)


def run_retrieval(
    cohort_dir: str | Path,
    split_files: Sequence[str | Path],
    model_files: Mapping[str, Sequence[str | Path]],
    participants_tsv: str | Path,
    outputs: Mapping[str, Path],
    k: int,
    final_files: Mapping[str, str | Path] | None = None,
    final_split: str | Path | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """Build the feature library and score retrieval; write :func:`retrieval_outputs`.

    Parameters
    ----------
    cohort_dir : path
        The assembled cohort (``results/models/cohort``).
    split_files : sequence of path
        Split TSVs, fold k at index k.
    model_files : mapping
        ``{encoder: [model.pt of fold 0, fold 1, ...]}`` for the trained encoders.
    participants_tsv : path
        participants.tsv; its columns become the library's metadata.
    outputs : mapping
        :func:`retrieval_outputs`.
    k : int
        Cut-off of precision@k and recall@k.
    final_files : mapping, optional
        ``{encoder: model.pt of its final model}``.
    final_split : path, optional
        The final models' split TSV (needed with ``final_files``).
    n_boot, seed : int
        Resamples and seed of :func:`~neurofusion.retrieval.evaluate.compare_maps`.

    Returns
    -------
    pandas.DataFrame
        The summary (``features``, ``fold``, ``group``, ``n_queries``,
        ``precision_at_k``, ``recall_at_k``, ``map``, ``prior_map``).
    """
    cohort = Cohort(cohort_dir)
    split_files = [Path(p) for p in split_files]
    participants = load_participants(participants_tsv, need_two_groups=False)
    final_files = final_files or {}
    blocks = [
        (model, fold, path, split_files[fold])
        for model, paths in model_files.items()
        for fold, path in enumerate(paths)
    ]
    blocks += [(model, FINAL_FOLD, path, final_split) for model, path in final_files.items()]
    inputs = final_model_inputs(cohort)
    write_library(
        outputs["library"],
        (
            fold_library(model, fold, path, split, cohort, participants)
            for model, fold, path, split in blocks
        ),
        {
            model: (torch.load(path, map_location="cpu", weights_only=True), inputs)
            for model, path in final_files.items()
        },
    )
    scores, relevance = [], {}
    for name, fold, table, query, gallery, gallery_groups in _fold_sets(
        outputs["library"], list(model_files), cohort, split_files
    ):
        fold_scores = retrieval_scores(query, table["group"], gallery, gallery_groups, k)
        fold_scores.insert(0, "participant_id", table["participant_id"].tolist())
        fold_scores.insert(0, "fold", fold)
        fold_scores.insert(0, "features", name)
        scores.append(fold_scores)
        relevance.setdefault(name, []).append(
            ranked_relevance(query, table["group"], gallery, gallery_groups)
        )
    scores = pd.concat(scores, ignore_index=True)
    summary = pd.concat(
        [summarise(table.drop(columns="features")).assign(features=name)
         for name, table in scores.groupby("features", sort=False)],
        ignore_index=True,
    )  # fmt: skip
    summary = summary[["features", *summary.columns.drop("features")]]
    comparisons = compare_maps(scores, list(model_files), n_boot, seed)
    for key, table in (("scores", scores), ("summary", summary), ("comparisons", comparisons)):
        with atomic_path(outputs[key]) as tmp:
            table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    curves = {}
    for name, blocks in relevance.items():
        depth = min(block.shape[1] for block in blocks)
        ks = range(1, depth + 1)
        curves[name] = tuple(
            np.array([np.concatenate([f(b, k) for b in blocks]).mean() for k in ks])
            for f in (precision_at_k, recall_at_k)
        )
    # Every feature set ranks the same galleries, so any one gives the same-group share.
    prior = float(np.concatenate([b.mean(axis=1) for b in next(iter(relevance.values()))]).mean())
    precision_recall_figure(curves, prior, outputs["figure"])
    write_json(
        outputs["provenance"],
        provenance_record(
            step="retrieval",
            inputs=[
                *split_files,
                *(p for paths in model_files.values() for p in paths),
                *final_files.values(),
            ],
            parameters={"k": k, "encoders": list(model_files), "bootstrap": n_boot, "seed": seed},
        ),
    )
    return summary
