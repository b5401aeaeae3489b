# Functional preprocessing (nipype), one job per subject; needs the subject's anat outputs.


rule func:
    input:
        **{key: str(anat_outputs(DERIV, "{subject}")[key]) for key in ANAT_FOR_FUNC},
        bold=raw_image("bold"),
        sidecar=raw_image("bold", ".json"),
    output:
        **{
            key: str(path)
            for key, path in func_outputs(DERIV, "{subject}", FUNC_RESOLUTION).items()
        },
    log:
        f"{LOGS}/func/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/func/sub-{{subject}}.tsv"
    conda:
        "../envs/preprocess.yaml"
    threads: config["preprocessing"]["threads"]
    resources:
        mem_mb=mem_mb(3000),
        runtime=30,
    params:
        deriv=lambda wildcards, output: Path(output.provenance).parents[2],
        work=f"{OUT}/work",
        func=config["preprocessing"]["func"],
        seed=config["preprocessing"]["seed"],
    script:
        "../scripts/func.py"


rule preprocess:
    input:
        lambda wildcards: preprocess_targets(),
