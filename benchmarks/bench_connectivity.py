"""Seconds of the per-subject connectivity step, and of the fALFF/ReHo maps, at paper size.

A synthetic clean BOLD on the MNI 3 mm grid the workflow writes (67 x 79 x 64, the
grid of nilearn's template at 3 mm; the study's SPM grid is 61 x 73 x 61) with 230
volumes, region signals plus noise inside the template's brain mask, and the AAL-116 atlas
on the same grid. Timed, as medians of repeated runs:

* ``region_signals``: our numpy extraction (means and coverage of 116 regions), and
  nilearn's ``NiftiLabelsMasker`` (means only, no cleaning) on the same data, for the
  choice made in :mod:`neurofusion.connectivity.timeseries`;
* ``matrices``: Pearson and Fisher z;
* ``run_connectome``: the whole step as rule ``connectome`` runs it (reading the
  images, every output, figure and provenance);
* ``falff`` and ``reho``: the voxel-wise maps the functional stage adds.

Run: ``python benchmarks/bench_connectivity.py [--repeats 5]``; writes
benchmarks/results/connectivity.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from common import measure, write_result

from neurofusion.connectivity.atlas import write_atlas
from neurofusion.connectivity.connectome import run_connectome
from neurofusion.connectivity.matrices import fisher_z, pearson
from neurofusion.connectivity.outputs import atlas_outputs
from neurofusion.connectivity.settings import ConnectivitySettings
from neurofusion.connectivity.timeseries import region_signals
from neurofusion.preprocessing.boldmaps import falff, reho
from neurofusion.templates import mni_brain_mask

N_VOLUMES = 230
TR = 2.0


def synthetic_run(root: Path) -> dict[str, Path]:
    """Write the atlas, a clean BOLD, its mask and sidecar under ``root``."""
    settings = ConnectivitySettings()
    atlas = atlas_outputs(root, 3)
    write_atlas(settings, 3, atlas)
    labels = np.asarray(nib.load(atlas["dseg"]).dataobj)
    mask_img = mni_brain_mask(3)
    mask = np.asarray(mask_img.dataobj) > 0
    rng = np.random.default_rng(0)
    signals = rng.standard_normal((117, N_VOLUMES)).astype(np.float32)
    signals[0] = 0
    bold = np.zeros((*mask.shape, N_VOLUMES), dtype=np.float32)
    bold[mask] = signals[labels[mask]] + rng.standard_normal((mask.sum(), N_VOLUMES), np.float32)
    files = {
        "clean_bold": root / "bold.nii.gz",
        "brain_mask": root / "mask.nii.gz",
        "bold_sidecar": root / "bold.json",
    }
    nib.save(nib.Nifti1Image(bold, mask_img.affine), files["clean_bold"])
    nib.save(mask_img, files["brain_mask"])
    files["bold_sidecar"].write_text(json.dumps({"RepetitionTime": TR}))
    return {**files, "atlas_dseg": atlas["dseg"], "atlas_tsv": atlas["tsv"]}


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark and write benchmarks/results/connectivity.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    from nilearn.maskers import NiftiLabelsMasker

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        files = synthetic_run(root)
        bold_img = nib.load(files["clean_bold"])
        bold = np.asarray(bold_img.dataobj, dtype=np.float32)
        mask = np.asarray(nib.load(files["brain_mask"]).dataobj) > 0
        atlas_img = nib.load(files["atlas_dseg"])
        labels = np.asarray(atlas_img.dataobj)
        values = np.arange(1, 117)
        ours = region_signals(bold, mask, labels, values)
        masker = NiftiLabelsMasker(atlas_img, mask_img=files["brain_mask"], standardize=False)
        theirs = masker.fit_transform(bold_img)
        series = ours.series
        results = {
            "grid": list(bold.shape[:3]),
            "n_volumes": N_VOLUMES,
            "brain_voxels": int(mask.sum()),
            "max_abs_difference_numpy_vs_nilearn": float(np.abs(theirs - series).max()),
            "region_signals_numpy": measure(
                lambda: region_signals(bold, mask, labels, values), args.repeats
            ),
            "region_signals_nilearn_masker": measure(
                lambda: masker.fit_transform(bold_img), args.repeats
            ),
            "matrices": measure(lambda: fisher_z(pearson(series)), args.repeats),
            "run_connectome": measure(
                lambda: run_connectome(
                    "01", deriv_root=root / "deriv", settings=ConnectivitySettings(), **files
                ),
                args.repeats,
            ),
            "falff": measure(lambda: falff(bold[mask].T, TR), args.repeats),
            "reho": measure(lambda: reho(bold, mask), args.repeats),
        }
    path = write_result("connectivity", results)
    print(path.read_text())
    return results


if __name__ == "__main__":
    main()
