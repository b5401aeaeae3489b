"""Snakemake adapter: group QC table, exclusions, and with function region flags, QC-FC."""

from neurofusion.connectivity.settings import ConnectivitySettings
from neurofusion.logs import run_step
from neurofusion.qc.group import run_group_qc
from neurofusion.qc.settings import QCSettings

sm = snakemake  # noqa: F821 (injected by Snakemake)
subjects = {}
for key, members in sm.params.members.items():
    for index, subject in enumerate(members):
        subjects.setdefault(subject, {})[key] = sm.input[key][index]
run_step(
    sm.log[0],
    run_group_qc,
    subjects={subject: subjects[subject] for subject in sm.params.order if subject in subjects},
    groups=sm.params.groups,
    output_dir=sm.params.output_dir,
    qc_settings=QCSettings.from_config(sm.params.qc),
    connectivity=ConnectivitySettings.from_config(sm.params.connectivity),
)
