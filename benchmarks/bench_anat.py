"""Seconds and peak memory of the anatomical workflow, and its accuracy against truth.

Per subject, with 2 threads:

* ``paper``: one simulated subject at the study's T1 geometry (1 x 1 x 1.33 mm,
  256 x 256 x 144), wall time of each nipype node and of the whole workflow;
* ``tiny``: the tiny simulated subject, with the acceptance numbers (mean AAL Dice of the
  normalisation, GM/WM/CSF Dice against the true tissue maps);
* ``real``: the four real T1w heads of ../shared/data/bids_t1w when present (brain volume,
  correlation with the template), and, as a yardstick for that correlation, the same
  correlation after antspyx's default ``SyN`` registers the workflow's bias-corrected,
  skull-stripped T1w to the template instead;
* ``real-2mm``: the real heads with the SyN stage down to the template's 2 mm grid
  (``preprocessing.anat.syn_resolution_mm: 2``), without the antspyx yardstick.

Each workflow runs in a fresh child process so that ``peak_rss_mb`` is that subject's
own high-water mark. Run: ``python benchmarks/bench_anat.py [paper] [tiny] [real] [real-2mm]``
(default: all but ``real-2mm``); writes benchmarks/results/anat.json.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import sys
import tempfile
from pathlib import Path

from common import measure, write_result

from neurofusion.preprocessing.brain_extraction import DEFAULT_SYN_RESOLUTION_MM

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "bids_t1w"
THREADS = 2
TISSUES = ("GM", "WM", "CSF")


def simulate(preset: str, root: Path) -> tuple[str, Path, Path]:
    """Simulate and convert the first subject of ``preset``; (label, T1w, truth folder)."""
    import yaml

    from neurofusion.dicom.convert import convert_subject
    from neurofusion.dicom.select import rules_from_config
    from neurofusion.simulate import cohort_participants, settings_from_config, simulate_subject

    settings = settings_from_config({"preset": preset, "seed": 0, "n_per_group": 1})
    row = cohort_participants(settings).iloc[0]
    label = row["participant_id"].removeprefix("sub-")
    simulate_subject(row["participant_id"], row["group"], settings, root / "dicom", root / "truth")
    rules = rules_from_config(yaml.safe_load((REPO / "config.yaml").read_text())["dicom"])
    raw = convert_subject(label, root / "dicom", root / "rawdata", ["T1w"], rules)
    return label, Path(raw["T1w"]), root / "truth"


def node_seconds(work_dir: Path) -> dict[str, float]:
    """Wall time of every executed nipype node, from its ``_report/report.rst``."""
    seconds = {}
    for report in sorted(work_dir.rglob("_report/report.rst")):
        match = re.search(r"\* Duration\s*:\s*([0-9.]+)", report.read_text())
        if match:
            seconds[report.parent.parent.name] = round(float(match.group(1)), 2)
    return seconds


def _child(label: str, t1w: str, root: str, syn_resolution_mm: int, queue) -> None:
    """Run one subject in this (fresh) process and report its measurements."""
    from neurofusion.preprocessing.anat import run_anat

    def run():
        run_anat(
            label,
            t1w,
            Path(root) / "derivatives",
            Path(root) / "work",
            threads=THREADS,
            syn_resolution_mm=syn_resolution_mm,
        )

    result = measure(run, repeats=1)
    result["node_seconds"] = node_seconds(Path(root) / "work")
    queue.put(result)


def timed_run(
    label: str, t1w: Path, root: Path, syn_resolution_mm: int = DEFAULT_SYN_RESOLUTION_MM
) -> dict:
    """Run the anatomical workflow of one subject in a child process; its measurements."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    args = (label, str(t1w), str(root), syn_resolution_mm, queue)
    process = context.Process(target=_child, args=args)
    process.start()
    result = queue.get()
    process.join()
    return result


def bench_simulated(preset: str) -> dict:
    """Time one simulated subject of ``preset``; add accuracy against its truth."""
    from neurofusion.preprocessing.anat_outputs import anat_outputs
    from neurofusion.preprocessing.anat_quality import (
        normalisation_dice,
        segmentation_dice,
        template_correlation,
    )

    with tempfile.TemporaryDirectory(prefix=f"bench-anat-{preset}-") as scratch:
        root = Path(scratch)
        label, t1w, truth = simulate(preset, root / "sim")
        result = timed_run(label, t1w, root / "anat")
        outputs = anat_outputs(root / "anat" / "derivatives", label)
        true_maps = {t: truth / f"T1w_label-{t}_probseg.nii.gz" for t in TISSUES}
        result["accuracy"] = {
            "aal_mean_dice_mni2mm": normalisation_dice(
                outputs, truth / "T1w_atlas-AAL116_dseg.nii.gz"
            ),
            "tissue_dice": segmentation_dice(outputs, true_maps),
            "template_r": template_correlation(outputs["mni_t1w"]),
        }
    return result


def reference_syn_r(outputs: dict, seed: int = 1) -> float:
    """Template correlation of the T1w registered by antspyx's default ``SyN`` instead.

    The workflow's own bias-corrected T1w and brain mask go in; the template and the
    correlation are those of the workflow's check, so the two numbers differ only by the
    registration.
    """
    import ants

    from neurofusion import templates
    from neurofusion.preprocessing.anat_quality import template_correlation

    template = ants.from_nibabel_nifti(templates.mni_t1(2))
    brain = ants.image_read(str(outputs["t1w_preproc"])) * ants.image_read(
        str(outputs["brain_mask"])
    )
    registration = ants.registration(template, brain, "SyN", random_seed=seed)
    with tempfile.TemporaryDirectory(prefix="bench-anat-syn-") as scratch:
        warped = Path(scratch) / "warped.nii.gz"
        ants.image_write(registration["warpedmovout"], str(warped))
        return template_correlation(warped)


def bench_real(syn_resolution_mm: int = DEFAULT_SYN_RESOLUTION_MM) -> dict:
    """Time each real head; brain volume (litres) and correlation with the template.

    With the default ``syn_resolution_mm`` (4 mm) also the antspyx yardstick
    (:func:`reference_syn_r`).
    """
    from neurofusion.preprocessing.anat_outputs import anat_outputs
    from neurofusion.preprocessing.anat_quality import mask_litres, template_correlation

    results = {}
    for t1w in sorted(REAL.glob("sub-*/anat/sub-*_T1w.nii.gz")):
        label = t1w.name.split("_")[0].removeprefix("sub-")
        with tempfile.TemporaryDirectory(prefix="bench-anat-real-") as scratch:
            result = timed_run(label, t1w, Path(scratch), syn_resolution_mm)
            outputs = anat_outputs(Path(scratch) / "derivatives", label)
            result["brain_litres"] = mask_litres(outputs["brain_mask"])
            result["template_r"] = template_correlation(outputs["mni_t1w"])
            if syn_resolution_mm == DEFAULT_SYN_RESOLUTION_MM:
                result["template_r_antspyx_default_syn"] = reference_syn_r(outputs)
        results[f"sub-{label}"] = result
    return results


def main(parts: list[str]) -> None:
    """Run the requested parts and merge them into benchmarks/results/anat.json."""
    path = Path(__file__).resolve().parent / "results" / "anat.json"
    results = json.loads(path.read_text())["results"] if path.is_file() else {}
    for part in parts or ["paper", "tiny", "real"]:
        if part == "real":
            results[part] = bench_real()
        elif part == "real-2mm":
            results[part] = bench_real(syn_resolution_mm=2)
        else:
            results[part] = bench_simulated(part)
        results[part]["threads"] = THREADS
        print(part, json.dumps(results[part], indent=1, default=str), flush=True)
        write_result("anat", results)


if __name__ == "__main__":
    main(sys.argv[1:])
