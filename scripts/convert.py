"""Snakemake adapter: convert one subject's DICOM to BIDS raw data."""

from neurofusion.dicom.convert import convert_subject
from neurofusion.dicom.select import rules_from_config
from neurofusion.logs import run_step

sm = snakemake  # noqa: F821 (injected by Snakemake)
run_step(
    sm.log[0],
    convert_subject,
    subject=sm.wildcards.subject,
    source=sm.params.source,
    rawdata_root=sm.params.rawdata,
    modalities=sm.params.modalities,
    rules=rules_from_config(sm.params.dicom),
    on_multiple=sm.params.dicom["on_multiple"],
)
