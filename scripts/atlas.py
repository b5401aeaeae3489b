"""Snakemake adapter: the atlas resampled to the MNI BOLD grid (once per dataset)."""

from neurofusion.connectivity.atlas import write_atlas
from neurofusion.connectivity.outputs import atlas_outputs
from neurofusion.connectivity.settings import ConnectivitySettings
from neurofusion.logs import run_step

sm = snakemake  # noqa: F821 (injected by Snakemake)
settings = ConnectivitySettings.from_config(sm.params.connectivity)
run_step(
    sm.log[0],
    write_atlas,
    settings=settings,
    resolution_mm=sm.params.resolution,
    outputs=atlas_outputs(sm.params.output_dir, sm.params.resolution, settings.atlas),
)
