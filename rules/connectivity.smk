# AAL-116 (or configured) atlas on the BOLD grid once per dataset; per subject, region
# time series and Pearson / Fisher-z matrices.


rule atlas:
    input:
        [] if ATLAS == "AAL116" else [ATLAS, config["connectivity"]["atlas_labels"]],
    output:
        **{key: str(path) for key, path in ATLAS_FILES.items()},
    log:
        f"{LOGS}/atlas/atlas.log",
    benchmark:
        f"{BENCH}/atlas/atlas.tsv"
    conda:
        "../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(2000),
        runtime=10,
    params:
        output_dir=lambda wildcards, output: Path(output.dseg).parents[2],
        resolution=FUNC_RESOLUTION,
        connectivity=config["connectivity"],
    script:
        "../scripts/atlas.py"


rule connectome:
    input:
        unpack(connectome_inputs),
    output:
        **{
            key: str(path)
            for key, path in connectivity_outputs(DERIV, "{subject}", ATLAS).items()
        },
    log:
        f"{LOGS}/connectivity/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/connectivity/sub-{{subject}}.tsv"
    conda:
        "../envs/preprocess.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(2000),
        runtime=10,
    params:
        deriv=lambda wildcards, output: Path(output.provenance).parents[2],
        connectivity=config["connectivity"],
        min_timepoints=config["preprocessing"]["func"]["min_volumes"],
        expected_regions=DERIV_REGIONS,
    script:
        "../scripts/connectivity.py"


rule connectivity:
    input:
        lambda wildcards: connectivity_targets(),
