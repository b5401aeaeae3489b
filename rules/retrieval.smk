# Feature library of every subject's learned embedding (per fold), nearest-subject search,
# precision@k, recall@k and MAP against raw-feature baselines.
# The final models (every subject trains) embed new subjects: `neurofusion retrieve --t1`.
from neurofusion.retrieval.embed import ENCODERS
from neurofusion.retrieval.stage import retrieval_outputs
from neurofusion.training.layout import FINAL, split_file

RETRIEVAL_ENCODERS = [name for name in ENCODERS if name in RUN_MODELS]


rule models_final_split:
    input:
        table=f"{COHORT}/cohort.tsv",
    output:
        str(split_file(SPLITS, FINAL)),
    log:
        f"{LOGS}/models/final_split.log",
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000),
        runtime=5,
    params:
        seed=MODELS_CFG["seed"],
        validation_fraction=MODELS_CFG["validation_fraction"],
    script:
        "../scripts/models_final_split.py"


rule train_final:
    input:
        unpack(
            lambda wildcards: job_inputs(
                COHORT,
                SPLITS,
                MODELS_DIR,
                wildcards.model,
                FINAL,
                MODELS_CFG["fusion_init"],
            )
        ),
    output:
        **fold_outputs(MODELS_DIR, "{model}", FINAL, deep=True),
    log:
        f"{LOGS}/models/{{model}}_final.log",
    benchmark:
        f"{BENCH}/models/{{model}}_final.tsv"
    wildcard_constraints:
        model="|".join(ENCODERS),
    conda:
        "../envs/models.yaml"
    threads: MODELS_CFG["threads"]
    resources:
        mem_mb=mem_mb(4000),
        runtime=120,
        gpu=int(MODELS_CFG["device"] == "cuda"),
    params:
        models=training_params,
    script:
        "../scripts/models_train.py"


rule retrieval_library:
    input:
        table=f"{COHORT}/cohort.tsv",
        participants=participants_source(),
        splits=[str(path) for path in split_paths(SPLITS, N_SPLITS)],
        final_split=str(split_file(SPLITS, FINAL)),
        models=[
            str(fold_outputs(MODELS_DIR, name, fold)["model"])
            for name in RETRIEVAL_ENCODERS
            for fold in range(N_SPLITS)
        ],
        final=[
            str(fold_outputs(MODELS_DIR, name, FINAL)["model"])
            for name in RETRIEVAL_ENCODERS
        ],
    output:
        **{
            key: (
                report(
                    str(path),
                    caption=f"../report/retrieval/{key}.rst",
                    category="Retrieval",
                )
                if key in ("summary", "comparisons", "figure")
                else str(path)
            )
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
        bootstrap=MODELS_CFG["bootstrap"],
        seed=MODELS_CFG["seed"],
    script:
        "../scripts/retrieval.py"


rule retrieval:
    input:
        rules.retrieval_library.output,
