# Group QC: the QC table, the exclusion list, cohort-wide region flags and QC-FC.


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
            for key, path in group_qc_outputs(OUT).items()
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
        subjects=subjects_with("bold"),
        groups=dict(zip(PARTICIPANTS["subject"], PARTICIPANTS["group"])),
        qc=config["qc"],
        connectivity=config["connectivity"],
    script:
        "../scripts/group_qc.py"
