"""Where the models stage's files live: split files, each (model, fold) job's outputs, the
permutation tables, and the files a job reads.

Outputs of a (model, fold) job, in ``<output_dir>/models/<model>/fold-<k>/``:
``predictions.tsv`` (``subject``, ``fold``, ``label``, ``probability``, ``prediction``,
``modalities`` the subject has, ``complete`` 1 when that is every modality of the cohort),
``history.tsv``, ``model.pt`` (torch) or ``model.joblib`` (scikit-learn) and
``provenance.json``, whose ``fitted`` field maps each fitting step to the participants
it saw and whose ``split`` field lists the split's participants by role.

The final models (fold :data:`FINAL`, in ``<output_dir>/models/<model>/final/``) are
trained the same way on every subject (:func:`~neurofusion.training.splits.final_split`);
they embed new subjects for retrieval and are not evaluated.
"""

from __future__ import annotations

from pathlib import Path

from neurofusion.training.cohort import cohort_outputs
from neurofusion.training.registry import MODELS

#: The fold name of the final models, trained on every subject.
FINAL = "final"
#: Seed key of the final models' training (the cross-validation folds use 0 .. K - 1).
FINAL_SEED_KEY = 2**31 - 1


def fold_key(fold: int | str) -> int:
    """Integer seed key of a fold: k for split k, :data:`FINAL_SEED_KEY` for the final."""
    return FINAL_SEED_KEY if fold == FINAL else int(fold)


def fold_name(fold: int | str) -> str:
    """Name of a fold's folder and split file: ``fold-<k>``, or ``final``."""
    return FINAL if fold == FINAL else f"fold-{fold}"


def fold_outputs(
    models_root: str | Path, model: str, fold: int | str, deep: bool | None = None
) -> dict[str, Path]:
    """Files of one (model, fold) job; ``deep`` overrides the model's own (for wildcards).
    ``fold`` :data:`FINAL`: the final model's, in ``<model>/final``."""
    return fold_files(Path(models_root) / model / fold_name(fold), model, deep)


def fold_files(folder: str | Path, model: str, deep: bool | None = None) -> dict[str, Path]:
    """Files of a (model, fold) job in its ``fold-<k>`` folder."""
    folder = Path(folder)
    deep = MODELS[model].deep if deep is None else deep
    weights = "model.pt" if deep else "model.joblib"
    return {
        "predictions": folder / "predictions.tsv",
        "history": folder / "history.tsv",
        "model": folder / weights,
        "provenance": folder / "provenance.json",
    }


def split_paths(splits_dir: str | Path, n_splits: int) -> list[Path]:
    """``fold-<k>.tsv`` of every split, k = 0 .. n_splits - 1."""
    return [split_file(splits_dir, k) for k in range(n_splits)]


def split_file(splits_dir: str | Path, fold: int | str) -> Path:
    """The split TSV of a fold: ``fold-<k>.tsv``, or ``final.tsv`` for :data:`FINAL`."""
    return Path(splits_dir) / f"{fold_name(fold)}.tsv"


def job_inputs(
    cohort_dir: str | Path,
    splits_dir: str | Path,
    models_root: str | Path,
    model: str,
    fold: int | str | None,
    fusion_init: str,
) -> dict[str, Path]:
    """Files a (model, fold) job reads; ``fold`` None: a permutation job (no branches).

    Keys: ``table`` and the model's cohort arrays; ``split`` (with a fold); for ``fusion``
    starting from its branches and for ``late_fusion``, ``<branch>_<file>`` of the same
    fold's branch jobs.
    """
    spec = MODELS[model]
    cohort = cohort_outputs(cohort_dir, ("T1w", "bold"))
    files = {"table": cohort["table"], **{a: cohort[a] for a in spec.arrays}}
    if fold is None:
        return files
    files["split"] = split_file(splits_dir, fold)
    if model == "late_fusion" or (model == "fusion" and fusion_init == "branches"):
        for name in spec.branches:
            for key, path in fold_outputs(models_root, name, fold).items():
                files[f"{name}_{key}"] = path
    return files


def permutation_file(models_dir: str | Path, model: str, first: int, last: int) -> Path:
    """``<models_dir>/<model>/permutations/<first>-<last>.tsv``."""
    return Path(models_dir) / model / "permutations" / f"{first}-{last}.tsv"
