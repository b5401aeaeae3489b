"""Cohort assembly: who is classified, and every subject's inputs as stacked arrays.

The cohort folder (``<output_dir>/models/cohort``) holds

* ``cohort.tsv``: one row per included subject (``participant_id``, ``group``, ``label``
  1 for the positive group, ``index`` into the arrays, and ``has_T1w`` / ``has_bold``, 1
  when the subject has that modality), in participants-table order;
* ``excluded.tsv``: the subjects left out and why (QC exclusions);
* arrays (``.npy``, read memory-mapped), each present when its modality is:
  ``t1`` (n, X, Y, Z) brain-masked T1 z-scored per subject, ``gm`` (n, X, Y, Z) grey-matter
  probability, both on the CNN grid (``resolution_mm``); ``fc`` (n, 116, 116) Fisher-z
  connectivity (diagonal 0); ``maps`` (n, 2, X, Y, Z) fALFF and ReHo z-scored per subject
  on the CNN grid (both modalities); ``handcrafted.tsv`` regional grey-matter volumes and
  GLCM texture; ``timeseries.npz`` the AAL time series (one (T, 116) array per subject);
* ``provenance.json``.

A subject without one of the cohort's modalities (``input.missing_modality: keep``) has
all-zero rows in that modality's arrays (and in ``maps``) and no entry in
``timeseries.npz``; the models read only the rows a subject has
(:meth:`Cohort.has`), and an all-zero input is what marks a modality as absent to the
fusion network (:class:`~neurofusion.models.fusion.FusionNet`).

Only per-subject operations happen here (resampling, a subject's own intensity
normalisation, a subject's own texture quantisation), so nothing crosses folds.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from neurofusion.atlas import AAL_NAME
from neurofusion.bids.participants import load_participants
from neurofusion.connectivity.outputs import connectivity_outputs
from neurofusion.errors import InputError, NeurofusionError
from neurofusion.fileio import atomic_path
from neurofusion.preprocessing.anat_outputs import anat_outputs
from neurofusion.preprocessing.func_outputs import func_outputs
from neurofusion.provenance import write_provenance
from neurofusion.training.features import (
    aal_on_grid,
    brain_box_grid,
    handcrafted_features,
    handcrafted_names,
    resample,
    zscore_within,
)

log = logging.getLogger(__name__)

#: Arrays of the cohort folder and the modalities each needs.
ARRAY_MODALITIES: dict[str, tuple[str, ...]] = {
    "t1": ("T1w",),
    "gm": ("T1w",),
    "handcrafted": ("T1w",),
    "fc": ("bold",),
    "timeseries": ("bold",),
    "maps": ("T1w", "bold"),
}
#: File name of each array in the cohort folder.
ARRAY_FILES = {
    "t1": "t1.npy",
    "gm": "gm.npy",
    "handcrafted": "handcrafted.tsv",
    "fc": "fc.npy",
    "timeseries": "timeseries.npz",
    "maps": "maps.npy",
}


def subject_inputs(
    deriv_root: str | Path,
    subject: str,
    modalities: Sequence[str],
    func_resolution_mm: int = 3,
    atlas: str = AAL_NAME,
) -> dict[str, Path]:
    """Every per-subject file cohort assembly reads, for the given modalities.

    Keys: ``mni_t1w``, ``mni_mask``, ``mni_probseg_GM`` (T1w; the anat stage's), ``fisherz``,
    ``timeseries`` (bold; the connectivity stage's), ``falff``, ``reho`` (both; the func
    stage's voxel-wise maps).
    """
    files: dict[str, Path] = {}
    if "T1w" in modalities:
        anat = anat_outputs(deriv_root, subject)
        files |= {key: anat[key] for key in ("mni_t1w", "mni_mask", "mni_probseg_GM")}
    if "bold" in modalities:
        conn = connectivity_outputs(deriv_root, subject, atlas)
        files |= {"fisherz": conn["fisherz"], "timeseries": conn["timeseries"]}
        if "T1w" in modalities:
            func = func_outputs(deriv_root, subject, func_resolution_mm)
            files |= {"falff": func["falff"], "reho": func["reho"]}
    return files


def cohort_outputs(root: str | Path, modalities: Sequence[str]) -> dict[str, Path]:
    """Files of the cohort folder for the given modalities (see the module docstring)."""
    root = Path(root)
    out = {"table": root / "cohort.tsv", "excluded": root / "excluded.tsv"}
    for name, needs in ARRAY_MODALITIES.items():
        if set(needs) <= set(modalities):
            out[name] = root / ARRAY_FILES[name]
    out["provenance"] = root / "provenance.json"
    return out


def read_exclusions(path: str | Path | None) -> pd.DataFrame:
    """QC exclusions (``participant_id``, ``reason``); empty when ``path`` is None."""
    if path is None:
        return pd.DataFrame({"participant_id": [], "reason": []})
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = {"participant_id", "reason"} - set(table.columns)
    if missing:
        raise NeurofusionError(
            f"{path}: missing column(s) {sorted(missing)}; the exclusion list needs "
            "participant_id and reason"
        )
    table["participant_id"] = "sub-" + table["participant_id"].str.removeprefix("sub-")
    return table[["participant_id", "reason"]]


def load_image(
    subject: str,
    path: Path,
    grid: tuple | None,
    fix: str = "rerun the stage that writes it",
    grid_fix: str = "every subject's MNI images must share one grid; rerun its preprocessing",
) -> tuple[np.ndarray, np.ndarray]:
    """A 3D float32 image and its affine.

    Parameters
    ----------
    subject : str
        Who the image belongs to (named in errors).
    path : Path
    grid : (affine, shape) or None
        The grid the image must lie on (the cohort's MNI grid); None: any.
    fix, grid_fix : str
        The fix an error proposes: for a missing or non-3D image, for one off ``grid``.

    Raises
    ------
    InputError
        Missing, not 3D, or off ``grid``.
    """
    if not path.is_file():
        raise InputError(subject, path, "the file is missing", fix)
    img = nib.load(str(path))
    data = np.asarray(img.dataobj, dtype=np.float32)
    if data.ndim != 3:
        raise InputError(subject, path, f"expected a 3D image, got shape {data.shape}", fix)
    if grid is not None and (data.shape != tuple(grid[1]) or not np.allclose(img.affine, grid[0])):
        raise InputError(
            subject, path, f"image grid {data.shape} differs from the cohort's {grid[1]}", grid_fix
        )
    return data, img.affine


def read_fisherz(subject: str, path: Path, names: Sequence[str] | None = None) -> pd.DataFrame:
    """A subject's (N, N) Fisher-z matrix, diagonal set to 0, region names as labels.

    Parameters
    ----------
    subject : str
    path : Path
        TSV: header = region names, first column = the same names.
    names : sequence of str, optional
        The regions every subject must have, in this order (the cohort's first subject's).

    Raises
    ------
    InputError
        Missing file, other regions or order, asymmetric or non-finite entries.
    """
    if not path.is_file():
        raise InputError(
            subject,
            path,
            "the connectivity matrix is missing",
            "rerun the connectivity stage for this subject",
        )
    table = pd.read_csv(path, sep="\t", index_col=0)
    expected = list(table.columns) if names is None else list(names)
    if list(table.columns) != expected or list(table.index) != expected:
        raise InputError(
            subject,
            path,
            f"expected a square matrix over the cohort's {len(expected)} regions, in the "
            "order of its first subject, as header and first column",
            "rerun the connectivity stage for this subject",
        )
    matrix = table.to_numpy(dtype=np.float64)
    np.fill_diagonal(matrix, 0.0)
    if not np.all(np.isfinite(matrix)) or not np.allclose(matrix, matrix.T, atol=1e-5):
        raise InputError(
            subject,
            path,
            "the matrix is not finite and symmetric off the diagonal (an empty region?)",
            "check the subject's ROI coverage "
            "and exclude the subject in QC if a region has no signal",
        )
    return pd.DataFrame(matrix.astype(np.float32), index=table.index, columns=table.columns)


def read_timeseries(subject: str, path: Path, n_regions: int) -> np.ndarray:
    """A subject's (T, N) region time series (float32)."""
    if not path.is_file():
        raise InputError(
            subject,
            path,
            "the region time series are missing",
            "rerun the connectivity stage for this subject",
        )
    data = pd.read_csv(path, sep="\t").to_numpy(dtype=np.float32)
    if data.ndim != 2 or data.shape[1] != n_regions or data.shape[0] < 3:
        raise InputError(
            subject,
            path,
            f"expected time x {n_regions} values, got {data.shape}",
            "rerun the connectivity stage for this subject",
        )
    return data


def _write_npy(paths: Sequence[Path], rows, shapes: Sequence[tuple[int, ...]]) -> None:
    """Fill float32 ``.npy`` files of ``shapes`` row by row, atomically.

    ``rows`` yields one tuple per subject, holding that subject's row of each file.
    """
    with contextlib.ExitStack() as stack:
        tmps = [stack.enter_context(atomic_path(path)) for path in paths]
        outs = [
            np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            for tmp, shape in zip(tmps, shapes, strict=True)
        ]
        for i, row in enumerate(rows):
            for out, value in zip(outs, row, strict=True):
                out[i] = value
        for out in outs:
            out.flush()
        del outs


def assemble_cohort(
    participants: str | Path,
    exclusions: str | Path | None,
    deriv_root: str | Path,
    out_dir: str | Path,
    positive_group: str,
    modalities: Sequence[str],
    resolution_mm: float = 4.0,
    func_resolution_mm: int = 3,
    atlas: str = AAL_NAME,
    subject_modalities: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Path]:
    """Build the cohort folder (see the module docstring) from the derivatives.

    Parameters
    ----------
    participants : path
        BIDS ``participants.tsv`` (``participant_id``, ``group``).
    exclusions : path or None
        QC exclusion list (``participant_id``, ``reason``); these subjects are dropped.
    deriv_root : path
        BIDS-derivatives root with the anat and connectivity outputs.
    out_dir : path
        The cohort folder.
    positive_group : str
        Group label of the positive class (label 1).
    modalities : sequence of str
        ``T1w`` and/or ``bold``: which arrays to build.
    resolution_mm : float
        Voxel size (mm) of the CNN grid the 2 mm MNI images are resampled to (cut to the
        template's brain, :func:`~neurofusion.training.features.brain_box_grid`).
    func_resolution_mm : int
        ``res-`` entity of the fALFF and ReHo maps.
    atlas : str
        ``connectivity.atlas`` (the ``atlas-`` entity of the matrices read).
    subject_modalities : mapping, optional
        ``{participant_id: modalities it has}`` for subjects with only some of
        ``modalities`` (``input.missing_modality: keep``); others have all of them.

    Returns
    -------
    dict of str to Path
        :func:`cohort_outputs`.
    """
    out = cohort_outputs(out_dir, modalities)
    table = load_participants(participants, positive_group=positive_group)
    excluded = read_exclusions(exclusions)
    excluded = excluded[excluded["participant_id"].isin(table["participant_id"])]
    cohort = table[~table["participant_id"].isin(excluded["participant_id"])].reset_index(drop=True)
    if cohort["group"].nunique() != 2:
        raise NeurofusionError(
            f"after the QC exclusions in {exclusions}, {len(cohort)} subject(s) in "
            f"{cohort['group'].nunique()} group(s) remain; classification needs both groups"
        )
    cohort = cohort.drop(columns=["subject"])
    cohort["label"] = (cohort["group"] == positive_group).astype(int)
    cohort["index"] = np.arange(len(cohort))
    subjects = list(cohort["participant_id"])
    has = _availability(subjects, modalities, subject_modalities or {})
    for modality in modalities:
        cohort[f"has_{modality}"] = [int(modality in has[s]) for s in subjects]
    inputs = {s: subject_inputs(deriv_root, s, has[s], func_resolution_mm, atlas) for s in subjects}
    log.info("cohort: %d subjects (%d excluded by QC)", len(cohort), len(excluded))
    parameters = {
        "resolution_mm": resolution_mm,
        "modalities": list(modalities),
        "positive_group": positive_group,
    }

    if "T1w" in modalities:
        with_t1 = [s for s in subjects if "T1w" in has[s]]
        first = inputs[with_t1[0]]["mni_t1w"]
        _, source_affine = load_image(with_t1[0], first, None)
        source_shape = nib.load(str(first)).shape[:3]
        grid = (source_affine, source_shape)
        cnn_affine, cnn_shape = brain_box_grid(source_affine, source_shape, resolution_mm)
        parameters |= {
            "source_shape": list(source_shape),
            "source_affine": source_affine.tolist(),
            "cnn_shape": list(cnn_shape),
            "cnn_affine": cnn_affine.tolist(),
        }
        labels = aal_on_grid(source_affine, source_shape)
        voxel_ml = float(abs(np.linalg.det(source_affine[:3, :3]))) / 1000.0
        features = []

        def anat_rows():
            for s in subjects:
                if "T1w" not in has[s]:
                    features.append(np.zeros(len(handcrafted_names())))
                    yield 0.0, 0.0
                    continue
                t1, _ = load_image(s, inputs[s]["mni_t1w"], grid)
                mask, _ = load_image(s, inputs[s]["mni_mask"], grid)
                gm, _ = load_image(s, inputs[s]["mni_probseg_GM"], grid)
                features.append(handcrafted_features(t1, gm, mask, labels, voxel_ml))
                yield (
                    cnn_t1(t1, mask, source_affine, cnn_affine, cnn_shape),
                    resample(gm, source_affine, cnn_affine, cnn_shape),
                )

        shape = (len(subjects), *cnn_shape)
        _write_npy([out["t1"], out["gm"]], anat_rows(), [shape, shape])
        hand = pd.DataFrame(np.array(features), columns=handcrafted_names())
        hand.insert(0, "participant_id", subjects)
        with atomic_path(out["handcrafted"]) as tmp:
            hand.to_csv(tmp, sep="\t", index=False, float_format="%.6g")

    if "bold" in modalities:
        with_bold = [s for s in subjects if "bold" in has[s]]
        names = list(read_fisherz(with_bold[0], inputs[with_bold[0]]["fisherz"]).columns)
        parameters["regions"] = names

        def fc_rows():
            for s in subjects:
                yield (read_fisherz(s, inputs[s]["fisherz"], names).to_numpy() if s in with_bold
                       else 0.0,)  # fmt: skip

        _write_npy([out["fc"]], fc_rows(), [(len(subjects), len(names), len(names))])
        series = {s: read_timeseries(s, inputs[s]["timeseries"], len(names)) for s in with_bold}
        with atomic_path(out["timeseries"]) as tmp:
            np.savez(tmp, **series)

    if "maps" in out:

        def map_rows():
            for s in subjects:
                if not {"T1w", "bold"} <= set(has[s]):
                    yield (0.0,)
                    continue
                stack = []
                for key in ("falff", "reho"):
                    data, affine = load_image(s, inputs[s][key], None)
                    on_grid = resample(data, affine, cnn_affine, cnn_shape)
                    stack.append(zscore_within(on_grid, on_grid != 0))
                yield (np.stack(stack),)

        _write_npy([out["maps"]], map_rows(), [(len(subjects), 2, *cnn_shape)])

    with atomic_path(out["excluded"]) as tmp:
        excluded.to_csv(tmp, sep="\t", index=False)
    with atomic_path(out["table"]) as tmp:
        cohort.to_csv(tmp, sep="\t", index=False)
    write_provenance(
        out["provenance"],
        step="models_cohort",
        inputs=[
            participants,
            *([exclusions] if exclusions else []),
            *(p for files in inputs.values() for p in files.values()),
        ],
        parameters=parameters,
    )
    return out


def cnn_t1(
    t1: np.ndarray,
    mask: np.ndarray,
    source_affine: np.ndarray,
    cnn_affine: np.ndarray,
    cnn_shape: Sequence[int],
) -> np.ndarray:
    """A subject's MNI T1 as the 3D CNN reads it: z-scored inside its brain mask, then
    resampled (anti-aliased) onto the CNN grid; (X, Y, Z) float32."""
    return resample(zscore_within(t1, mask), source_affine, cnn_affine, tuple(cnn_shape))


def _availability(
    subjects: Sequence[str], modalities: Sequence[str], partial: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Each subject's modalities among ``modalities``; NeurofusionError when a subject has
    none, or when no subject has one of them."""
    has = {s: [m for m in modalities if m in partial.get(s, modalities)] for s in subjects}
    empty = [s for s in subjects if not has[s]]
    if empty:
        raise NeurofusionError(
            f"{', '.join(empty)}: none of the cohort's modalities {list(modalities)}; "
            "remove them from participants.tsv"
        )
    for modality in modalities:
        if not any(modality in has[s] for s in subjects):
            raise NeurofusionError(f"no subject has {modality}; remove it from input.modalities")
    return has


class Cohort:
    """Read access to a cohort folder; arrays are memory-mapped, loaded on first use.

    Parameters
    ----------
    root : path
        The cohort folder written by :func:`assemble_cohort`.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.table = pd.read_csv(self.root / "cohort.tsv", sep="\t", dtype={"group": str})
        if not self.modalities:
            raise NeurofusionError(
                f"{self.root / 'cohort.tsv'} has no has_T1w / has_bold columns: it was "
                f"assembled by an older neurofusion; delete {self.root} and run again"
            )

    @cached_property
    def parameters(self) -> dict:
        """The assembly's parameters (grids, regions, ...) from its ``provenance.json``."""
        return json.loads((self.root / "provenance.json").read_text())["parameters"]

    @property
    def ids(self) -> np.ndarray:
        """(n,) participant_id, in array order."""
        return self.table["participant_id"].to_numpy()

    @property
    def labels(self) -> np.ndarray:
        """(n,) int labels, 1 = positive group."""
        return self.table["label"].to_numpy()

    @property
    def modalities(self) -> list[str]:
        """The cohort's modalities (``T1w``, ``bold``), those with a ``has_`` column."""
        return [c.removeprefix("has_") for c in self.table.columns if c.startswith("has_")]

    def has(self, modality: str) -> np.ndarray:
        """(n,) bool: which subjects have ``modality``, in array order."""
        return self.table[f"has_{modality}"].to_numpy().astype(bool)

    @property
    def complete(self) -> np.ndarray:
        """(n,) bool: subjects with every modality of the cohort."""
        return np.logical_and.reduce([self.has(m) for m in self.modalities])

    def keep(self, table: pd.DataFrame, flags: np.ndarray) -> pd.DataFrame:
        """The rows of ``table`` (with ``participant_id``) whose subject's entry of the (n,)
        bool ``flags`` (array order, e.g. :attr:`complete`) is true."""
        return table[flags[self.indices(table["participant_id"].tolist())]].reset_index(drop=True)

    @property
    def subject_modalities(self) -> np.ndarray:
        """(n,) str: each subject's modalities joined by ``+`` (``T1w+bold``, ``T1w``...)."""
        names = self.modalities
        flags = np.column_stack([self.has(m) for m in names])
        return np.array(
            ["+".join(m for m, f in zip(names, row, strict=True) if f) for row in flags]
        )

    def array(self, name: str) -> np.ndarray:
        """A memory-mapped ``.npy`` array: ``t1``, ``gm``, ``fc`` or ``maps``."""
        return np.load(self.root / ARRAY_FILES[name], mmap_mode="r")

    @cached_property
    def handcrafted(self) -> np.ndarray:
        """(n, 580) handcrafted features, in array order."""
        table = pd.read_csv(self.root / ARRAY_FILES["handcrafted"], sep="\t")
        return table.drop(columns="participant_id").to_numpy(dtype=np.float64)

    @cached_property
    def timeseries(self) -> list[np.ndarray | None]:
        """Per-subject (T, 116) time series, in array order (None without BOLD)."""
        with np.load(self.root / ARRAY_FILES["timeseries"]) as data:
            return [data[pid] if pid in data.files else None for pid in self.ids]

    def indices(self, participant_ids: Sequence[str]) -> np.ndarray:
        """Array rows of the given participants."""
        lookup: Mapping[str, int] = dict(zip(self.ids, range(len(self.ids)), strict=True))
        return np.array([lookup[p] for p in participant_ids], dtype=int)
