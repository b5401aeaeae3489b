"""Snakemake adapter: one subject's region time series and connectivity matrices."""

from neurofusion.connectivity.connectome import run_connectome, run_connectome_from_timeseries
from neurofusion.connectivity.settings import ConnectivitySettings
from neurofusion.logs import run_step

sm = snakemake  # noqa: F821 (injected by Snakemake)
common = {
    "subject": sm.wildcards.subject,
    "deriv_root": sm.params.deriv,
    "settings": ConnectivitySettings.from_config(sm.params.connectivity),
}
if hasattr(sm.input, "timeseries"):  # input.kind: derivatives
    run_step(
        sm.log[0],
        run_connectome_from_timeseries,
        timeseries=sm.input.timeseries,
        min_timepoints=sm.params.min_timepoints,
        expected_regions=sm.params.expected_regions,
        **common,
    )
else:
    run_step(
        sm.log[0],
        run_connectome,
        clean_bold=sm.input.clean_bold,
        brain_mask=sm.input.brain_mask,
        bold_sidecar=sm.input.bold_sidecar,
        atlas_dseg=sm.input.atlas_dseg,
        atlas_tsv=sm.input.atlas_tsv,
        **common,
    )
