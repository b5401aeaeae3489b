# Shared names: output folders, the cohort, and where each subject's inputs live.
from pathlib import Path

from neurofusion.bids.layout import raw_image_path
from neurofusion.preprocessing.anat_outputs import anat_outputs
from neurofusion.preprocessing.func_outputs import func_outputs
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
BIDS_FILES = (
    bids_inputs(input_root(config), SUBJECTS, MODALITIES) if KIND == "bids" else {}
)


wildcard_constraints:
    subject="[A-Za-z0-9]+",


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
    if "T1w" not in MODALITIES:
        raise WorkflowError(
            "preprocessing needs T1w images (the BOLD is normalised through the T1w); "
            "with input.modalities [bold] only the rawdata target is available"
        )
    targets = [
        str(path)
        for subject in SUBJECTS
        for path in anat_outputs(DERIV, subject).values()
    ]
    if "bold" in MODALITIES:
        targets += [
            str(path)
            for subject in SUBJECTS
            for path in func_outputs(DERIV, subject, FUNC_RESOLUTION).values()
        ]
    return targets
