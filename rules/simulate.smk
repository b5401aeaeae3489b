# Simulated cohort (input.kind: simulate): scanner DICOM plus the ground truth.
SIM = f"{OUT}/simulated"


rule simulate_participants:
    output:
        f"{SIM}/participants.tsv",
    log:
        f"{LOGS}/simulate/participants.log",
    benchmark:
        f"{BENCH}/simulate/participants.tsv"
    conda:
        "../envs/simulate.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(500),
        runtime=5,
    params:
        simulate=config["simulate"],
    script:
        "../scripts/simulate_participants.py"


rule simulate_subject:
    output:
        dicom=directory(f"{SIM}/sourcedata/sub-{{subject}}"),
        truth=directory(f"{SIM}/truth/sub-{{subject}}"),
    log:
        f"{LOGS}/simulate/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/simulate/sub-{{subject}}.tsv"
    conda:
        "../envs/simulate.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(2000),
        runtime=10,
    params:
        # Cohort size is left out: adding subjects must not rerun the others.
        simulate={k: v for k, v in config["simulate"].items() if k != "n_per_group"},
        group=lambda wildcards: PARTICIPANTS.set_index("subject").at[
            wildcards.subject, "group"
        ],
    script:
        "../scripts/simulate_subject.py"
