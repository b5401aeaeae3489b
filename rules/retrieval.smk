# Feature library of every subject's learned embedding (per fold), nearest-subject search,
# precision@k, recall@k and MAP against raw-feature baselines.
from neurofusion.retrieval.embed import ENCODERS
from neurofusion.retrieval.stage import retrieval_outputs

RETRIEVAL_ENCODERS = [name for name in ENCODERS if name in RUN_MODELS]


rule retrieval_library:
    input:
        table=f"{COHORT}/cohort.tsv",
        participants=participants_source(),
        splits=[str(path) for path in split_paths(SPLITS, N_SPLITS)],
        models=[
            str(fold_outputs(MODELS_DIR, name, fold)["model"])
            for name in RETRIEVAL_ENCODERS
            for fold in range(N_SPLITS)
        ],
    output:
        **{
            key: str(path)
            for key, path in retrieval_outputs(f"{OUT}/retrieval").items()
        },
    log:
        f"{LOGS}/retrieval/library.log",
    benchmark:
        f"{BENCH}/retrieval/library.tsv"
    conda:
        "../envs/models.yaml"
    threads: MODELS_CFG["threads"]
    resources:
        mem_mb=mem_mb(4000),
        runtime=30,
    params:
        cohort=lambda wildcards, input: Path(input.table).parent,
        encoders=RETRIEVAL_ENCODERS,
        n_splits=N_SPLITS,
        k=config["retrieval"]["k"],
    script:
        "../scripts/retrieval.py"


rule retrieval:
    input:
        rules.retrieval_library.output,
