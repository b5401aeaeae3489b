# Anatomical preprocessing (nipype + ANTs), one job per subject.


rule anat:
    input:
        t1w=raw_image("T1w"),
    output:
        **{key: str(path) for key, path in anat_outputs(DERIV, "{subject}").items()},
    log:
        f"{LOGS}/anat/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/anat/sub-{{subject}}.tsv"
    conda:
        "../envs/preprocess.yaml"
    threads: config["preprocessing"]["threads"]
    resources:
        mem_mb=mem_mb(3000),
        runtime=30,
    params:
        deriv=lambda wildcards, output: Path(output.provenance).parents[2],
        work=f"{OUT}/work",
        seed=config["preprocessing"]["seed"],
        syn_resolution_mm=config["preprocessing"]["anat"]["syn_resolution_mm"],
    script:
        "../scripts/anat.py"
