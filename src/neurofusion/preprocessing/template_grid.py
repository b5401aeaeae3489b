"""nipype interface that writes the MNI template grid a workflow resamples onto."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from neurofusion.templates import mni_brain_mask, mni_t1


class _TemplateGridInputSpec(BaseInterfaceInputSpec):
    resolution_mm = traits.Int(mandatory=True, desc="isotropic voxel size (mm)")


class _TemplateGridOutputSpec(TraitedSpec):
    t1w_file = File(exists=True, desc="MNI T1 template on the grid")
    mask_file = File(exists=True, desc="its brain mask")


class TemplateGrid(SimpleInterface):
    """Write nilearn's MNI152 template and brain mask at ``resolution_mm`` (no download)."""

    input_spec = _TemplateGridInputSpec
    output_spec = _TemplateGridOutputSpec

    def _run_interface(self, runtime):
        resolution = self.inputs.resolution_mm
        for key, img in (
            ("t1w_file", mni_t1(resolution)),
            ("mask_file", mni_brain_mask(resolution)),
        ):
            path = Path.cwd() / f"{key}_res-{resolution}.nii.gz"
            nib.save(img, path)
            self._results[key] = str(path)
        return runtime
