# Models and evaluation: cohort, cross-validation splits, one job per (model, fold),
# label-permutation tests, and the evaluation of every model.
from neurofusion.evaluation.report import evaluation_outputs
from neurofusion.training.cohort import cohort_outputs, subject_inputs
from neurofusion.training.layout import (
    fold_outputs,
    job_inputs,
    permutation_file,
    split_paths,
)
from neurofusion.training.permutations import permutation_chunks, permutation_kind
from neurofusion.training.registry import MODELS, available_models

MODELS_CFG = config["models"]
MODELS_DIR = f"{OUT}/models"
COHORT = f"{MODELS_DIR}/cohort"
SPLITS = f"{MODELS_DIR}/splits"
EVALUATION = f"{OUT}/evaluation"
# K is capped at the smaller group's size (the demo has 8 per group), so that every test
# fold holds both groups.
FOLDS = min(MODELS_CFG["folds"], int(PARTICIPANTS["group"].value_counts().min()))
N_SPLITS = FOLDS * MODELS_CFG["repeats"]
# input.kind derivatives brings no grey-matter map or brain mask: the T1 models need the
# pipeline's own anat stage.
MODEL_MODALITIES = [m for m in MODALITIES if KIND != "derivatives" or m == "bold"]
MODEL_STATUS = available_models(
    MODELS_CFG["enabled"],
    MODEL_MODALITIES,
    (
        "absent from input.modalities"
        if KIND != "derivatives"
        else "which input.kind derivatives does not provide (no GM map or brain mask)"
    ),
)
RUN_MODELS = [name for name, why in MODEL_STATUS.items() if not why]
DEEP = [name for name in RUN_MODELS if MODELS[name].deep]
# The label-permutation jobs of each model: {model: [file of permutations first-last]}.
PERMUTATION_FILES = {
    name: [
        str(permutation_file(MODELS_DIR, name, first, last))
        for first, last in permutation_chunks(
            MODELS_CFG["permutations"][permutation_kind(name)],
            MODELS_CFG["permutations_per_job"][permutation_kind(name)],
        )
    ]
    for name in RUN_MODELS
}
PERMUTED = [name for name, files in PERMUTATION_FILES.items() if files]
SINGLE_MODALITY = [
    name for name in RUN_MODELS if name not in ("fusion", "late_fusion", "early_fusion")
]


wildcard_constraints:
    fold=r"\d+",
    first=r"\d+",
    last=r"\d+",


rule models_cohort:
    input:
        participants=participants_source(),
        exclusions=f"{OUT}/qc/exclusions.tsv",
        subjects=[
            str(path)
            for subject in SUBJECTS
            for path in subject_inputs(
                DERIV,
                subject,
                [m for m in MODEL_MODALITIES if m in SUBJECT_MODALITIES[subject]],
                FUNC_RESOLUTION,
                ATLAS,
            ).values()
        ],
    output:
        **{
            key: str(path)
            for key, path in cohort_outputs(COHORT, MODEL_MODALITIES).items()
        },
    log:
        f"{LOGS}/models/cohort.log",
    benchmark:
        f"{BENCH}/models/cohort.tsv"
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(4000),
        runtime=30,
    params:
        deriv=lambda wildcards, input: Path(input.subjects[0]).parents[2],
        positive_group=config["positive_group"],
        modalities=MODEL_MODALITIES,
        subject_modalities={
            f"sub-{s}": SUBJECT_MODALITIES[s]
            for s in SUBJECTS
            if set(MODEL_MODALITIES) - set(SUBJECT_MODALITIES[s])
        },
        resolution_mm=MODELS_CFG["cnn_resolution_mm"],
        func_resolution_mm=FUNC_RESOLUTION,
        atlas=ATLAS,
    script:
        "../scripts/models_cohort.py"


rule models_splits:
    input:
        table=f"{COHORT}/cohort.tsv",
    output:
        [str(path) for path in split_paths(SPLITS, N_SPLITS)],
    log:
        f"{LOGS}/models/splits.log",
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000),
        runtime=5,
    params:
        folds=FOLDS,
        repeats=MODELS_CFG["repeats"],
        seed=MODELS_CFG["seed"],
        validation_fraction=MODELS_CFG["validation_fraction"],
    script:
        "../scripts/models_splits.py"


rule train_deep:
    input:
        unpack(
            lambda wildcards: job_inputs(
                COHORT,
                SPLITS,
                MODELS_DIR,
                wildcards.model,
                wildcards.fold,
                MODELS_CFG["fusion_init"],
            )
        ),
    output:
        **fold_outputs(MODELS_DIR, "{model}", "{fold}", deep=True),
    log:
        f"{LOGS}/models/{{model}}_fold-{{fold}}.log",
    benchmark:
        f"{BENCH}/models/{{model}}_fold-{{fold}}.tsv"
    wildcard_constraints:
        model="|".join(name for name in MODELS if MODELS[name].deep),
    conda:
        "../envs/models.yaml"
    threads: MODELS_CFG["threads"]
    resources:
        mem_mb=mem_mb(4000),
        runtime=120,
        # models.device: cuda asks the scheduler for one GPU (Slurm: --gpus=1).
        gpu=int(MODELS_CFG["device"] == "cuda"),
    params:
        models=training_params,
    script:
        "../scripts/models_train.py"


use rule train_deep as train_linear with:
    output:
        **fold_outputs(MODELS_DIR, "{model}", "{fold}", deep=False),
    wildcard_constraints:
        model="|".join(name for name in MODELS if not MODELS[name].deep),


rule models_permutations:
    input:
        unpack(
            lambda wildcards: job_inputs(
                COHORT, SPLITS, MODELS_DIR, wildcards.model, None, "scratch"
            )
        ),
        splits=[str(path) for path in split_paths(SPLITS, FOLDS)],
    output:
        f"{MODELS_DIR}/{{model}}/permutations/{{first}}-{{last}}.tsv",
    log:
        f"{LOGS}/models/{{model}}_permutations_{{first}}-{{last}}.log",
    benchmark:
        f"{BENCH}/models/{{model}}_permutations_{{first}}-{{last}}.tsv"
    wildcard_constraints:
        model="|".join(MODELS),
    conda:
        "../envs/models.yaml"
    threads: MODELS_CFG["threads"]
    resources:
        mem_mb=mem_mb(4000),
        runtime=1440,
    params:
        models=training_params,
    script:
        "../scripts/models_permutations.py"


rule models:
    input:
        [
            str(path)
            for name in RUN_MODELS
            for fold in range(N_SPLITS)
            for path in fold_outputs(MODELS_DIR, name, fold).values()
        ],


rule evaluation_report:
    input:
        predictions=expand(
            f"{MODELS_DIR}/{{model}}/fold-{{fold}}/predictions.tsv",
            model=RUN_MODELS,
            fold=range(N_SPLITS),
        ),
        histories=expand(
            f"{MODELS_DIR}/{{model}}/fold-{{fold}}/history.tsv",
            model=DEEP,
            fold=range(N_SPLITS),
        ),
        permutations=[path for files in PERMUTATION_FILES.values() for path in files],
    output:
        metrics=report(
            evaluation_outputs(EVALUATION)["metrics"],
            caption="../report/evaluation/metrics.rst",
            category="Evaluation",
        ),
        study_table=report(
            evaluation_outputs(EVALUATION)["study_table"],
            caption="../report/evaluation/study_table.rst",
            category="Evaluation",
        ),
        comparisons=report(
            evaluation_outputs(EVALUATION)["comparisons"],
            caption="../report/evaluation/comparisons.rst",
            category="Evaluation",
        ),
        permutations=report(
            evaluation_outputs(EVALUATION)["permutations"],
            caption="../report/evaluation/permutations.rst",
            category="Evaluation",
        ),
        missing_modality=report(
            evaluation_outputs(EVALUATION)["missing_modality"],
            caption="../report/evaluation/missing_modality.rst",
            category="Evaluation",
        ),
        roc=report(
            evaluation_outputs(EVALUATION)["roc"],
            caption="../report/evaluation/roc.rst",
            category="Evaluation",
        ),
        confusion=report(
            evaluation_outputs(EVALUATION)["confusion"],
            caption="../report/evaluation/confusion.rst",
            category="Evaluation",
        ),
        learning_curves=report(
            evaluation_outputs(EVALUATION)["learning_curves"],
            caption="../report/evaluation/learning_curves.rst",
            category="Evaluation",
        ),
        summary=report(
            evaluation_outputs(EVALUATION)["summary"],
            caption="../report/evaluation/summary.rst",
            category="Evaluation",
        ),
    log:
        f"{LOGS}/models/evaluation.log",
    conda:
        "../envs/models.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(2000),
        runtime=30,
    params:
        models=RUN_MODELS,
        deep=DEEP,
        folds=N_SPLITS,
        permuted=PERMUTED,
        single_modality=SINGLE_MODALITY,
        skipped={name: why for name, why in MODEL_STATUS.items() if why},
        groups=lambda wildcards: sorted(
            set(PARTICIPANTS["group"]) - {config["positive_group"]}
        )
        + [config["positive_group"]],
        bootstrap=MODELS_CFG["bootstrap"],
        seed=MODELS_CFG["seed"],
    script:
        "../scripts/evaluation.py"


rule evaluation:
    input:
        rules.evaluation_report.output,
