# neurofusion: DICOM or BIDS in; BIDS raw data, preprocessed MRI, connectomes,
# classifiers and their evaluation out. README.md explains how to run it.
import os

from snakemake.utils import min_version, validate

min_version("9.0")


# The shipped config.yaml holds every default; --configfile files are merged over it.
configfile: f"{workflow.basedir}/config.yaml"


validate(config, "rules/schemas/config.schema.yaml")


# Jobs import the library from this checkout, also inside --sdm conda environments
# (envs/*.yaml hold the third-party packages only).
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        filter(None, [f"{workflow.basedir}/src", os.environ.get("PYTHONPATH")])
    )
)


include: "rules/common.smk"
include: "rules/simulate.smk"
include: "rules/convert.smk"
include: "rules/anat.smk"
include: "rules/func.smk"
include: "rules/connectivity.smk"
include: "rules/qc.smk"
include: "rules/models.smk"
include: "rules/retrieval.smk"


# Everything the study's report is made of: group QC, evaluation and retrieval. Then
# `snakemake report --report report.html` writes them, each with its caption (report/),
# into one HTML file.
rule report:
    input:
        rules.group_qc.output,
        rules.evaluation.input,
        rules.retrieval.input,


rule all:
    default_target: True
    input:
        default_targets(),


# With --keep-going the other subjects finish; say which failed and how to go on without them.
onerror:
    report_failures(log)
