"""Anatomical workflow: accuracy against the simulator's truth, real heads, bad input.

The session fixtures simulate one tiny subject (T1 2 x 2 x 2.66 mm, 128 x 128 x 72, with
skull, bias field and noise), convert its DICOM with the project's converter and run the
anatomical workflow once; every accuracy test reads those outputs.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml
from conftest import REPO

from neurofusion import atlas, templates
from neurofusion.errors import InputError
from neurofusion.preprocessing.anat import init_anat_wf, run_anat
from neurofusion.preprocessing.anat_outputs import (
    MASK_KEYS,
    anat_outputs,
    image_keys,
    mni2t1w_transforms,
)
from neurofusion.preprocessing.anat_quality import (
    aal_on_template_grid,
    mask_litres,
    mean_label_dice,
    normalisation_dice,
    segmentation_dice,
    template_correlation,
)
from neurofusion.preprocessing.ants_interfaces import (
    Atropos,
    Registration,
    ants_seed,
    apply_transforms,
)
from neurofusion.preprocessing.brain_extraction import AFFINE_STAGES, syn_stages
from neurofusion.qc.anat_metrics import anat_qc

TISSUES = ("GM", "WM", "CSF")
#: Acceptance thresholds of the issue.
AAL_DICE_MIN = 0.8
TISSUE_DICE_MIN = {"GM": 0.8, "WM": 0.85, "CSF": 0.7}
BRAIN_LITRES = (1.0, 1.8)
TEMPLATE_R_MIN = 0.9
#: Real heads reach r = 0.63-0.68 with the default 4 mm SyN and 0.70-0.76 with the 2 mm
#: level (benchmarks/results/anat.json, real and real-2mm), short of issue 4's 0.9: a
#: single subject's sharp T1 against the smooth 152-subject average. antspyx's default
#: SyN, given the same bias-corrected brain, reaches 0.61-0.67. This floor guards against
#: a failed or degraded registration.
REAL_TEMPLATE_R_MIN = 0.6
#: With the SyN stage down to 2 mm, sub-01 reached r = 0.704 (0.63 at 4 mm; the best of
#: the four heads at 4 mm, 0.68): at least this.
FINE_SYN_REAL_R_MIN = 0.69
#: CNR of good 3 T T1w scans under MRIQC: from the lowest of 17 sessions of one healthy
#: subject on a 3 T Prisma under a current MRIQC (TheAxonLab/hcph-mriqc, group_T1w.tsv,
#: 1.42-1.58) to the 95th percentile of MRIQC's own 3 T test set, ds030, scans rated
#: accept or doubtful (nipreps/mriqc-learn, mriqc_learn/datasets/ds030.tsv, 3.37).
#: The same two sources put CJV at 0.39-0.67, SNR in GM at 4.8-8.9 and in WM at 9.2-19.1;
#: the four real heads miss these (CJV 0.69-0.81, SNR 3.1-3.4 and 7.1-8.5), as our
#: Atropos grey-matter posteriors are softer than FSL FAST's partial-volume maps (most
#: GM voxels have p = 0.5-0.9), which widens the weighted tissue SDs. Their background
#: was zeroed by the anonymiser (86-90 % of voxels exactly 0), so FBER is MRIQC's -1 and
#: EFC falls below the ds030 range.
REAL_CNR = (1.42, 3.37)


@dataclass(frozen=True)
class SimulatedSubject:
    """One simulated, converted subject: its label, raw T1w and truth folder."""

    label: str
    t1w: Path
    truth: Path


def simulate_converted_subject(root: Path, preset: str = "tiny") -> SimulatedSubject:
    """Simulate the first subject of a one-per-group cohort and convert its T1w to BIDS.

    Module-level (not a fixture) so that conftest.py can wrap it for other test modules.
    """
    from neurofusion.dicom.convert import convert_subject
    from neurofusion.dicom.select import rules_from_config
    from neurofusion.simulate import cohort_participants, settings_from_config, simulate_subject

    settings = settings_from_config({"preset": preset, "seed": 0, "n_per_group": 1})
    row = cohort_participants(settings).iloc[0]
    participant = row["participant_id"]
    label = participant.removeprefix("sub-")
    simulate_subject(participant, row["group"], settings, root / "dicom", root / "truth")
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    rules = rules_from_config(config["dicom"])
    raw = convert_subject(label, root / "dicom", root / "rawdata", ["T1w"], rules)
    return SimulatedSubject(label, Path(raw["T1w"]), root / "truth")


@pytest.fixture(scope="session")
def tiny_subject(tmp_path_factory) -> SimulatedSubject:
    """A tiny simulated subject with truth (about 15 s)."""
    return simulate_converted_subject(tmp_path_factory.mktemp("tiny_subject"))


def test_syn_resolution_sets_the_finest_registration_grid():
    """4 mm: SyN on the 2 mm template shrunk by 4 and 2; 2 mm adds the template's grid."""
    assert [syn_stages(mm)[0]["shrink"] for mm in (4, 2)] == [[4, 2], [4, 2, 1]]
    assert syn_stages(2)[0]["sigmas_vox"] == [2, 1, 0]
    wf = init_anat_wf(syn_resolution_mm=2)
    assert wf.get_node("brain_extraction_wf.syn_reg").inputs.stages == syn_stages(2)
    with pytest.raises(ValueError, match="finest_mm"):
        syn_stages(3)


@pytest.fixture(scope="session")
def tiny_anat(tiny_subject, tmp_path_factory) -> dict:
    """The anatomical workflow run on :func:`tiny_subject` with 2 threads."""
    root = tmp_path_factory.mktemp("tiny_anat")
    start = time.perf_counter()
    outputs = run_anat(
        tiny_subject.label, tiny_subject.t1w, root / "derivatives", root / "work", threads=2
    )
    return {"outputs": outputs, "root": root, "seconds": time.perf_counter() - start}


# --------------------------------------------------------------------------- workflow


def test_workflow_contract():
    wf = init_anat_wf(seed=3, omp_nthreads=2)
    inputs = wf.get_node("inputnode").inputs.copyable_trait_names()
    outputs = set(wf.get_node("outputnode").outputs.copyable_trait_names())
    assert "t1w" in inputs
    assert outputs == {
        "t1w_preproc",
        "brain_mask",
        "probseg",
        "mni_t1w",
        "mni_mask",
        "mni_probseg",
        "t1w2mni_xfm",
        "mni2t1w_xfm",
        "mni2t1w_invert",
        "overlay_png",
    }


def test_every_output_written(tiny_anat, tiny_subject):
    outputs = tiny_anat["outputs"]
    assert outputs == anat_outputs(tiny_anat["root"] / "derivatives", tiny_subject.label)
    missing = [key for key, path in outputs.items() if not path.is_file()]
    assert not missing
    mni_grid = templates.mni_t1(2)
    for key in image_keys():
        img = nib.load(outputs[key])
        expected = np.uint8 if key in MASK_KEYS else np.float32
        assert img.get_data_dtype() == expected, key
        if key.startswith("mni_"):
            assert img.shape == (99, 117, 95), key
            assert np.allclose(img.affine, mni_grid.affine), key
        else:
            assert nib.aff2axcodes(img.affine) == ("R", "A", "S"), key
        meta = json.loads(outputs[f"{key}_json"].read_text())
        assert meta["Sources"] == [
            f"bids:raw:sub-{tiny_subject.label}/anat/{tiny_subject.t1w.name}"
        ]
        if key.startswith("mni_"):
            assert meta["SpatialReference"] == templates.TEMPLATE_SPACE
    assert json.loads(outputs["t1w_preproc_json"].read_text())["SkullStripped"] is False
    provenance = json.loads(outputs["provenance"].read_text())
    assert provenance["seed"] == 0
    assert provenance["software"]["antspyx"] != "not installed"
    assert list(provenance["inputs"]) == [str(tiny_subject.t1w)]
    assert outputs["overlay_png"].read_bytes()[:4] == b"\x89PNG"


def test_normalisation_carries_true_labels_onto_mni_aal(tiny_anat, tiny_subject):
    labels = tiny_subject.truth / "T1w_atlas-AAL116_dseg.nii.gz"
    value = normalisation_dice(tiny_anat["outputs"], labels)
    assert value >= AAL_DICE_MIN, f"mean AAL Dice {value:.3f}"


def test_inverse_transforms_carry_mni_aal_to_native(tiny_anat, tiny_subject, tmp_path):
    truth = nib.load(tiny_subject.truth / "T1w_atlas-AAL116_dseg.nii.gz")
    aal = tmp_path / "aal.nii.gz"
    nib.save(
        nib.Nifti1Image(aal_on_template_grid(2).astype(np.float32), templates.mni_t1(2).affine), aal
    )
    transforms, invert = mni2t1w_transforms(tiny_anat["outputs"])
    out = apply_transforms(
        aal,
        tiny_subject.truth / "T1w_atlas-AAL116_dseg.nii.gz",
        transforms,
        tmp_path / "native.nii.gz",
        invert=invert,
        interpolation="GenericLabel",
    )
    carried = np.rint(nib.load(out).get_fdata()).astype(int)
    labels = [value for value, _ in atlas.aal_labels()]
    value = mean_label_dice(carried, np.asarray(truth.dataobj).astype(int), labels)
    assert value >= AAL_DICE_MIN, f"mean AAL Dice in native space {value:.3f}"


def test_segmentation_matches_true_tissues(tiny_anat, tiny_subject):
    truth = {t: tiny_subject.truth / f"T1w_label-{t}_probseg.nii.gz" for t in TISSUES}
    values = segmentation_dice(tiny_anat["outputs"], truth)
    for tissue, minimum in TISSUE_DICE_MIN.items():
        assert values[tissue] >= minimum, values


def test_outputs_are_consistent(tiny_anat):
    outputs = tiny_anat["outputs"]
    mask = np.asarray(nib.load(outputs["brain_mask"]).dataobj) > 0
    maps = np.stack([nib.load(outputs[f"probseg_{t}"]).get_fdata() for t in TISSUES])
    assert maps.min() >= 0 and maps.sum(axis=0).max() <= 1 + 1e-4
    assert np.all(maps.sum(axis=0)[~mask] == 0)
    assert np.allclose(maps.sum(axis=0)[mask], 1, atol=1e-3)
    assert template_correlation(outputs["mni_t1w"]) >= TEMPLATE_R_MIN


def test_rerun_resumes_from_cache_and_rewrites_outputs(tiny_anat, tiny_subject):
    outputs = tiny_anat["outputs"]
    before = outputs["t1w2mni_warp"].read_bytes()
    outputs["mni_t1w"].unlink()
    start = time.perf_counter()
    run_anat(
        tiny_subject.label,
        tiny_subject.t1w,
        tiny_anat["root"] / "derivatives",
        tiny_anat["root"] / "work",
        threads=2,
    )
    assert time.perf_counter() - start < tiny_anat["seconds"] / 3
    assert outputs["mni_t1w"].is_file()
    assert outputs["t1w2mni_warp"].read_bytes() == before


def test_outputs_do_not_depend_on_threads(tiny_anat, tiny_subject, tmp_path):
    """One thread gives the voxels of two: N4 and both registrations run single-threaded,
    so Snakemake lowering a job's threads to ``--cores`` changes no output."""
    derivatives = tmp_path / "derivatives"
    run_anat(tiny_subject.label, tiny_subject.t1w, derivatives, tmp_path / "work", threads=1)
    images = sorted(tiny_anat["root"].joinpath("derivatives").rglob("*.nii.gz"))
    assert len(images) >= 10
    for image in images:
        ours = derivatives / image.relative_to(tiny_anat["root"] / "derivatives")
        expected = np.asarray(nib.load(image).dataobj)
        assert np.asarray(nib.load(ours).dataobj).tobytes() == expected.tobytes(), image.name


def test_registration_is_deterministic(tiny_subject, tmp_path):
    """Same input and seed: bit-identical transforms (small 4 mm images, workflow's metrics).

    Both registrations (Mattes MI) run with one ITK thread, as in the workflow; seed 0 goes
    through :func:`ants_seed` (ANTs reads 0 as "seed from the clock").
    """
    import ants

    fixed, moving = tmp_path / "fixed.nii.gz", tmp_path / "moving.nii.gz"
    template = ants.from_nibabel_nifti(templates.mni_t1(2))
    ants.image_write(ants.resample_image(template, (4, 4, 4), False, 0), str(fixed))
    subject = ants.image_read(str(tiny_subject.t1w))
    ants.image_write(ants.resample_image(subject, (4, 4, 4), False, 0), str(moving))
    images = {"fixed_image": str(fixed), "moving_image": str(moving), "random_seed": ants_seed(0)}
    syn = [{**syn_stages()[0], "iterations": [30, 10]}]
    digests = []
    for run in ("a", "b"):
        (tmp_path / f"affine_{run}").mkdir()
        (tmp_path / f"syn_{run}").mkdir()
        affine = Registration(**images, stages=AFFINE_STAGES, num_threads=1).run(
            cwd=str(tmp_path / f"affine_{run}")
        )
        warp = Registration(
            **images, initial_transform=affine.outputs.affine, stages=syn, num_threads=1
        ).run(cwd=str(tmp_path / f"syn_{run}"))
        digests.append(
            (
                Path(warp.outputs.affine).read_bytes(),
                np.asarray(nib.load(warp.outputs.warp).dataobj).tobytes(),
            )
        )
    assert digests[0] == digests[1]


def test_segmentation_is_deterministic(tiny_anat, tmp_path):
    """Atropos run twice with two threads on the workflow's own inputs: identical output."""
    work = tiny_anat["root"] / "work"
    inputs = {
        "in_file": str(next(work.rglob("registration_copy/downsampled.nii.gz"))),
        "mask_file": str(next(work.rglob("band_reg/mask.nii.gz"))),
        "prior_images": [str(p) for p in sorted(work.rglob("_syn_priors*/resampled.nii.gz"))],
        "num_threads": 2,
    }
    assert len(inputs["prior_images"]) == 3
    runs = []
    for run in ("a", "b"):
        (tmp_path / run).mkdir()
        runs.append(Atropos(**inputs).run(cwd=str(tmp_path / run)).outputs)
    for first, second in zip(runs[0].posteriors, runs[1].posteriors, strict=True):
        assert np.array_equal(nib.load(first).get_fdata(), nib.load(second).get_fdata())


# --------------------------------------------------------------------------- bad input


def _corrupt(t1w: Path, folder: Path, kind: str) -> Path:
    img = nib.load(t1w)
    data = np.asarray(img.dataobj, dtype=np.float32)
    if kind == "4D":
        data = np.stack([data, data], axis=-1)
    else:
        data[10:12, 20:22, 30:32] = np.nan
    path = folder / f"sub-bad{kind}_T1w.nii.gz"
    nib.save(nib.Nifti1Image(data, img.affine), path)
    return path


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [("4D", "expected one 3D volume"), ("NaN", "NaN or infinite voxels")],
)
def test_bad_input_is_a_clear_error(tiny_subject, tmp_path, kind, fragment):
    path = _corrupt(tiny_subject.t1w, tmp_path, kind)
    with pytest.raises(InputError) as info:
        run_anat(f"bad{kind}", path, tmp_path / "derivatives", tmp_path / "work")
    message = str(info.value)
    assert message.startswith(f"sub-bad{kind}: ")
    assert fragment in message and str(path) in message and "Fix: " in message
    assert not (tmp_path / "derivatives").exists()


# --------------------------------------------------------------------------- real heads


@pytest.mark.shared
@pytest.mark.slow
def test_real_heads(shared_data, tmp_path):
    """All four real T1w images: plausible brain volume, good fit to the template, and
    anatomical QC metrics of good scans (:data:`REAL_CNR`).

    The heads run two at a time with one thread each, as the workflow's default (N4 and
    the ANTs registrations are single-threaded), which halves the test's wall time. The
    head that fits the template least at the default 4 mm SyN (sub-01, r = 0.63) runs with
    the SyN stage down to the template's 2 mm grid instead
    (``preprocessing.anat.syn_resolution_mm: 2``), first, as it takes longest: it must fit
    the template closer than any head did at 4 mm.
    """
    images = sorted((shared_data / "bids_t1w").glob("sub-*/anat/sub-*_T1w.nii.gz"))
    assert len(images) == 4
    labels = [image.name.split("_")[0].removeprefix("sub-") for image in images]
    assert labels[0] == "01"
    resolutions = [2] + [4] * (len(images) - 1)
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=spawn) as pool:
        jobs = [
            pool.submit(
                run_anat,
                label,
                image,
                tmp_path / "derivatives",
                tmp_path / f"work-{label}",
                syn_resolution_mm=mm,
            )
            for label, image, mm in zip(labels, images, resolutions, strict=True)
        ]
        runs = [job.result() for job in jobs]
    report = {
        label: (mask_litres(outputs["brain_mask"]), template_correlation(outputs["mni_t1w"]))
        for label, outputs in zip(labels, runs, strict=True)
    }
    for label, (litres, r) in report.items():
        assert BRAIN_LITRES[0] <= litres <= BRAIN_LITRES[1], report
        assert r >= REAL_TEMPLATE_R_MIN, (label, report)
    assert report["01"][1] >= FINE_SYN_REAL_R_MIN, report
    for label, outputs in zip(labels, runs, strict=True):
        qc = anat_qc(outputs)
        assert REAL_CNR[0] <= qc["cnr"] <= REAL_CNR[1], (label, qc)
        assert qc["snr_wm"] > qc["snr_gm"] > 1 and 0 < qc["cjv"] < 1, (label, qc)
        assert 0 < qc["efc"] < 1 and qc["fber"] == -1.0, (label, qc)
        assert qc["mni_mask_dice"] >= 0.9 and qc["template_r"] == report[label][1], (label, qc)
