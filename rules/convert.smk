# DICOM -> BIDS raw data, one job per subject (input.kind: dicom or simulate).


rule convert:
    input:
        convert_inputs,
    output:
        **{
            f"{role}{key}": str(raw_image_path(RAW, "{subject}", role, ext))
            for role in MODALITIES
            for key, ext in (("", ".nii.gz"), ("_json", ".json"))
        },
        scans=f"{RAW}/sub-{{subject}}/sub-{{subject}}_scans.tsv",
        provenance=f"{RAW}/sub-{{subject}}/sub-{{subject}}_provenance.json",
    log:
        f"{LOGS}/convert/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/convert/sub-{{subject}}.tsv"
    conda:
        "../envs/convert.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000),
        runtime=15,
    params:
        source=convert_source,
        rawdata=lambda wildcards, output: Path(output.scans).parents[1],
        modalities=MODALITIES,
        dicom=config["dicom"],
    script:
        "../scripts/convert.py"


rule rawdata_dataset:
    input:
        participants_source(),
    output:
        description=f"{RAW}/dataset_description.json",
        participants=f"{RAW}/participants.tsv",
        bidsignore=f"{RAW}/.bidsignore",
    log:
        f"{LOGS}/convert/dataset.log",
    benchmark:
        f"{BENCH}/convert/dataset.tsv"
    conda:
        "../envs/convert.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(500),
        runtime=5,
    params:
        positive_group=config["positive_group"],
    script:
        "../scripts/rawdata_dataset.py"


rule rawdata:
    input:
        rawdata_targets(),
