# Shared names: output folders, the cohort, and where each subject's inputs live.
import sys
from pathlib import Path

from neurofusion.bids.layout import raw_image_path
from neurofusion.failures import failed_jobs, failure_summary
from neurofusion.preprocessing.anat_outputs import anat_outputs
from neurofusion.preprocessing.func_outputs import func_outputs
from neurofusion.training.registry import MODELS
from neurofusion.training.settings import TrainSettings
from neurofusion.workflow import (
    bids_inputs,
    dicom_folder,
    input_root,
    participants_path,
    participants_table,
)

OUT = config["output_dir"]
RAW = f"{OUT}/rawdata"
DERIV = f"{OUT}/derivatives"
LOGS = f"{OUT}/logs"
BENCH = f"{OUT}/benchmarks"
KIND = config["input"]["kind"]
MODALITIES = config["input"]["modalities"]

PARTICIPANTS = participants_table(config)
if KIND != "simulate":
    validate(PARTICIPANTS, "schemas/participants.schema.yaml")
SUBJECTS = list(PARTICIPANTS["subject"])
MISSING_MODALITY = config["input"]["missing_modality"]
if MISSING_MODALITY == "keep" and KIND != "bids":
    raise WorkflowError(
        "input.missing_modality keep needs input.kind bids (which images each subject has "
        "must be known before the run); convert the DICOM to BIDS first, or use error"
    )
BIDS_FILES = (
    bids_inputs(input_root(config), SUBJECTS, MODALITIES, MISSING_MODALITY)
    if KIND == "bids"
    else {}
)
#: The modalities each subject has (all of input.modalities unless BIDS input lacks some).
SUBJECT_MODALITIES = {
    s: [m for m in MODALITIES if KIND != "bids" or m in BIDS_FILES[s]] for s in SUBJECTS
}


for role in MODALITIES:
    if not any(role in SUBJECT_MODALITIES[s] for s in SUBJECTS):
        raise WorkflowError(
            f"no participant has a {role} image; remove {role} from input.modalities"
        )


def subjects_with(*roles):
    """Subjects that have every one of ``roles``."""
    return [s for s in SUBJECTS if set(roles) <= set(SUBJECT_MODALITIES[s])]


wildcard_constraints:
    subject="[A-Za-z0-9]+",


# Resources. Every rule states threads, mem_mb and runtime (minutes); on Slurm they become
# --cpus-per-task, --mem and --time, and Slurm kills a job that exceeds them. The numbers
# are peak resident memory and wall time measured at the paper preset's (real-study)
# image sizes with 2 threads, plus margin: simulate_subject 1.1 GB / 50 s
# (benchmarks/results/simulate.json), anat 1.7 GB / 3 min on the real 1 mm T1w images
# (benchmarks/results/anat.json). convert, func and the cohort-level rules were measured
# on the tiny preset (Snakemake's benchmarks/*.tsv: convert 0.2 GB, func 0.5 GB and
# 1 CPU-minute) and scaled by voxel count: a paper BOLD run has 10x the tiny one's voxels,
# about 0.2 GB as float32 per 4D copy. A Slurm job also holds Snakemake (about 0.2 GB).
def mem_mb(first_attempt):
    """mem_mb that grows with each retry (--retries): first_attempt x attempt MB, so a
    job killed for memory is resubmitted with more."""
    return lambda wildcards, attempt: first_attempt * attempt


def report_failures(snakemake_log):
    """onerror: name the failed subjects and say how to continue without them."""
    logs = [snakemake_log] if isinstance(snakemake_log, str) else snakemake_log
    text = "".join(Path(path).read_text() for path in logs if Path(path).exists())
    participants = None if KIND == "simulate" else str(participants_path(config))
    message = failure_summary(failed_jobs(text), participants)
    if message:
        print(message, file=sys.stderr)


def raw_image(role, ext=".nii.gz"):
    """Input function: a subject's raw image, from the BIDS input or from conversion."""
    if KIND == "bids":
        suffix = ".json" if ext == ".json" else ""

        def from_bids(wildcards):
            image = BIDS_FILES[wildcards.subject][role]
            if not suffix:
                return str(image)
            return str(image).replace(".nii.gz", suffix).replace(".nii", suffix)

        return from_bids
    return str(raw_image_path(RAW, "{subject}", role, ext))


# Convert stage (rules/convert.smk)
def convert_source(wildcards):
    """The subject's DICOM folder (nothing is read from other subjects' folders)."""
    if KIND == "simulate":
        return f"{OUT}/simulated/sourcedata/sub-{wildcards.subject}"
    return str(dicom_folder(input_root(config), wildcards.subject))


def convert_inputs(wildcards):
    """Every file under the subject's DICOM folder, so a changed file reruns the subject."""
    source = convert_source(wildcards)
    if KIND == "simulate":
        return [source]
    return sorted(str(p) for p in Path(source).rglob("*") if p.is_file())


def participants_source():
    """The participants table the raw dataset's participants.tsv is made from."""
    if KIND == "simulate":
        return f"{OUT}/simulated/participants.tsv"
    return str(participants_path(config))


def rawdata_targets():
    """Every subject's raw images: the BIDS input's, or the converted ones."""
    if KIND == "bids":
        return [str(p) for files in BIDS_FILES.values() for p in files.values()]
    images = [
        str(raw_image_path(RAW, subject, role, ext))
        for subject in SUBJECTS
        for role in MODALITIES
        for ext in (".nii.gz", ".json")
    ]
    return (
        images
        + expand(rules.convert.output.scans, subject=SUBJECTS)
        + list(rules.rawdata_dataset.output)
    )


# Preprocessing (rules/anat.smk, rules/func.smk)
FUNC_RESOLUTION = config["preprocessing"]["func"]["resolution_mm"]
#: Anatomical outputs the functional workflow reads.
ANAT_FOR_FUNC = (
    "t1w_preproc",
    "brain_mask",
    "probseg_GM",
    "probseg_WM",
    "probseg_CSF",
    "t1w2mni_affine",
    "t1w2mni_warp",
)


def preprocess_targets():
    """Every subject's anatomical and (with a T1w) functional derivatives."""
    if KIND == "derivatives":
        raise WorkflowError(
            "input.kind derivatives starts after preprocessing; run the connectivity "
            "target (or no target) instead of preprocess"
        )
    if "T1w" not in MODALITIES:
        raise WorkflowError(
            "preprocessing needs T1w images (the BOLD is normalised through the T1w); "
            "with input.modalities [bold] only the rawdata target is available"
        )
    targets = [
        str(path)
        for subject in subjects_with("T1w")
        for path in anat_outputs(DERIV, subject).values()
    ]
    if "bold" in MODALITIES:
        targets += [
            str(path)
            for subject in subjects_with("T1w", "bold")
            for path in func_outputs(DERIV, subject, FUNC_RESOLUTION).values()
        ]
    return targets


# Connectivity and group QC (rules/connectivity.smk, rules/qc.smk)
from neurofusion.connectivity.derivatives import expected_region_count, find_derivatives
from neurofusion.connectivity.outputs import atlas_outputs, connectivity_outputs
from neurofusion.qc.outputs import anat_qc_path, group_qc_outputs

ATLAS = config["connectivity"]["atlas"]
ATLAS_FILES = atlas_outputs(OUT, FUNC_RESOLUTION, ATLAS)
#: input.kind derivatives: each subject's files found by the input.derivatives globs.
DERIV_INPUTS = (
    find_derivatives(
        input_root(config), SUBJECTS, config["input"]["derivatives"], MODALITIES
    )
    if KIND == "derivatives"
    else {}
)
#: Region count of most subjects' time series; a subject that differs stops in its job.
DERIV_REGIONS = expected_region_count(DERIV_INPUTS) if DERIV_INPUTS else None


def connectome_inputs(wildcards):
    """A subject's region time series (derivatives input) or clean BOLD and the atlas."""
    if KIND == "derivatives":
        return {"timeseries": str(DERIV_INPUTS[wildcards.subject]["timeseries"])}
    func = func_outputs(DERIV, wildcards.subject, FUNC_RESOLUTION)
    return {
        "clean_bold": str(func["clean_bold"]),
        "brain_mask": str(func["brain_mask"]),
        "bold_sidecar": str(func["clean_bold_json"]),
        "atlas_dseg": str(ATLAS_FILES["dseg"]),
        "atlas_tsv": str(ATLAS_FILES["tsv"]),
    }


def group_qc_members():
    """For each input key of the group QC job, the subjects whose files it lists, in order."""
    members = {}
    if "bold" in MODALITIES:
        members |= {key: subjects_with("bold") for key in ("fisherz", "coverage")}
        if KIND != "derivatives":
            members |= {key: subjects_with("bold") for key in ("confounds", "qc")}
        elif config["input"]["derivatives"]["confounds"]:
            members["confounds"] = SUBJECTS
    if KIND != "derivatives" and "T1w" in MODALITIES:
        members["anat_qc"] = subjects_with("T1w")
    return members


def group_qc_inputs(wildcards):
    """Per subject: matrices and coverage, confounds (FD), functional and anatomical QC."""
    paths = {
        "fisherz": lambda s: connectivity_outputs(DERIV, s, ATLAS)["fisherz"],
        "coverage": lambda s: connectivity_outputs(DERIV, s, ATLAS)["coverage"],
        "confounds": lambda s: (
            DERIV_INPUTS[s]["confounds"]
            if KIND == "derivatives"
            else func_outputs(DERIV, s, FUNC_RESOLUTION)["confounds"]
        ),
        "qc": lambda s: func_outputs(DERIV, s, FUNC_RESOLUTION)["qc"],
        "anat_qc": lambda s: anat_qc_path(DERIV, s),
    }
    return {
        key: [str(paths[key](s)) for s in members]
        for key, members in group_qc_members().items()
    }


#: Whether the cohort has function (group QC then writes region flags and QC-FC).
GROUP_QC_FILES = group_qc_outputs(OUT, functional="bold" in MODALITIES)


def connectivity_targets():
    """Every subject's time series, matrices and coverage, and the group QC."""
    if KIND != "derivatives" and not {"T1w", "bold"} <= set(MODALITIES):
        raise WorkflowError(
            "connectivity from images needs T1w and bold in input.modalities (the BOLD is "
            "normalised through the T1w); bring region time series with input.kind "
            "derivatives instead"
        )
    targets = [
        str(path)
        for subject in subjects_with("bold")
        for path in connectivity_outputs(DERIV, subject, ATLAS).values()
    ]
    targets += [str(path) for path in GROUP_QC_FILES.values()]
    if KIND != "derivatives":
        targets += [str(path) for path in ATLAS_FILES.values()]
    return targets


def mni_t1w(subject):
    """A subject's T1w in MNI space: from the input derivatives or from rule anat."""
    if KIND == "derivatives":
        return str(DERIV_INPUTS[subject]["t1w_mni"])
    return str(anat_outputs(DERIV, subject)["mni_t1w"])


def anat_qc_targets():
    """Every T1w subject's anatomical QC JSON and the group QC."""
    return [str(anat_qc_path(DERIV, s)) for s in subjects_with("T1w")] + [
        str(path) for path in GROUP_QC_FILES.values()
    ]


def default_targets():
    """What `snakemake` with no target builds: every stage the input and modalities allow."""
    if KIND == "derivatives":
        return connectivity_targets() if "bold" in MODALITIES else []
    if "T1w" not in MODALITIES:
        return list(rules.rawdata.input)
    if "bold" in MODALITIES:
        return preprocess_targets() + anat_qc_targets() + connectivity_targets()
    return preprocess_targets() + anat_qc_targets()


def training_params(wildcards):
    """What a model's training jobs get as params (a change to these alone retrains):
    the learning rates only of the networks that model trains."""
    model = wildcards.model
    return TrainSettings.training_entries(
        config["models"], MODELS[model].networks(model)
    )
