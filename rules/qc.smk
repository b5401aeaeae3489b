# Anatomical QC per subject; group QC: the QC table, the exclusion list, and with
# function cohort-wide region flags and QC-FC.
from neurofusion.qc.anat_metrics import ANAT_QC_INPUTS


rule anat_qc:
    input:
        *[str(anat_outputs(DERIV, "{subject}")[key]) for key in ANAT_QC_INPUTS],
    output:
        str(anat_qc_path(DERIV, "{subject}")),
    log:
        f"{LOGS}/anat_qc/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/anat_qc/sub-{{subject}}.tsv"
    conda:
        "../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(2000),
        runtime=10,
    params:
        deriv=lambda wildcards, output: Path(output[0]).parents[2],
    script:
        "../scripts/anat_qc.py"


rule group_qc:
    input:
        unpack(group_qc_inputs),
    output:
        **{
            key: (
                report(
                    str(path), caption=f"../report/qc/{key}.rst", category="Group QC"
                )
                if key in ("table", "exclusions", "qcfc_png")
                else str(path)
            )
            for key, path in GROUP_QC_FILES.items()
        },
    log:
        f"{LOGS}/qc/group_qc.log",
    benchmark:
        f"{BENCH}/qc/group_qc.tsv"
    conda:
        "../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(2000),
        runtime=10,
    params:
        output_dir=lambda wildcards, output: Path(output.table).parents[1],
        members=group_qc_members(),
        order=SUBJECTS,
        groups=dict(zip(PARTICIPANTS["subject"], PARTICIPANTS["group"])),
        qc=config["qc"],
        connectivity=config["connectivity"],
    script:
        "../scripts/group_qc.py"
