"""Visual reports of the preprocessing: registration overlays as PNG figures."""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

#: Cut coordinates (mm) of the overlay: axial z, then sagittal x.
AXIAL_CUTS = (-30, -10, 10, 30, 50)
SAGITTAL_CUTS = (-40, -20, 0, 20, 40)


def registration_overlay(
    image: str | Path,
    contour: str | Path,
    out_png: str | Path,
    title: str,
    edges: str | Path | None = None,
) -> Path:
    """Draw a registered image with the outline of the reference it was registered to.

    Parameters
    ----------
    image : path
        The registered (resampled) image, e.g. the subject's T1 in MNI space.
    contour : path
        A binary image on the same grid (e.g. the template brain mask), outlined in red.
    out_png : path
        Where the figure goes (PNG, 2 rows: axial and sagittal cuts).
    title : str
        Title printed on the figure.
    edges : path, optional
        A probability map (e.g. the template white-matter prior) outlined at 0.5 in cyan.

    Returns
    -------
    Path
        ``out_png``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from nilearn import plotting

    figure, axes = plt.subplots(2, 1, figsize=(12, 5.5), facecolor="black")
    for axis, mode, cuts in zip(axes, ("z", "x"), (AXIAL_CUTS, SAGITTAL_CUTS), strict=True):
        display = plotting.plot_anat(
            str(image),
            display_mode=mode,
            cut_coords=cuts,
            axes=axis,
            figure=figure,
            title=title if mode == "z" else None,
            annotate=mode == "z",
            draw_cross=False,
            dim=0,
        )
        display.add_contours(str(contour), levels=[0.5], colors="r", linewidths=0.8)
        if edges is not None:
            display.add_contours(str(edges), levels=[0.5], colors="c", linewidths=0.5)
    figure.savefig(str(out_png), dpi=90, facecolor="black")
    plt.close(figure)
    return Path(out_png)


class _OverlayInputSpec(BaseInterfaceInputSpec):
    image = File(exists=True, mandatory=True, desc="registered image")
    contour = File(exists=True, mandatory=True, desc="reference mask outlined in red")
    edges = File(exists=True, desc="probability map outlined at 0.5 in cyan")
    title = traits.Str("registration", usedefault=True)


class _OverlayOutputSpec(TraitedSpec):
    out_png = File(exists=True)


class RegistrationOverlay(SimpleInterface):
    """nipype wrapper of :func:`registration_overlay`."""

    input_spec = _OverlayInputSpec
    output_spec = _OverlayOutputSpec

    def _run_interface(self, runtime):
        out = Path(runtime.cwd) / "registration.png"
        registration_overlay(
            self.inputs.image,
            self.inputs.contour,
            out,
            self.inputs.title,
            edges=self.inputs.edges or None,
        )
        self._results["out_png"] = str(out)
        return runtime
