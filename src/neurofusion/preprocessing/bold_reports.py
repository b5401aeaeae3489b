"""Figures and QC numbers of the functional workflow."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
import pandas as pd
from nilearn import plotting

from neurofusion.preprocessing.anat_quality import dice
from neurofusion.preprocessing.confounds import MOTION_COLUMNS

#: FD (mm) above which a volume counts as high-motion in the QC summary.
FD_THRESHOLD_MM = 0.5


def func_qc(
    confounds: pd.DataFrame,
    tsnr: np.ndarray,
    gm_mask: np.ndarray,
    brain_mask: np.ndarray,
    template_mask: np.ndarray,
) -> dict[str, float]:
    """QC numbers of one run.

    Parameters
    ----------
    confounds : pandas.DataFrame
        The run's confounds table.
    tsnr : numpy.ndarray
        Temporal SNR map (mean / SD after quadratic detrending), 3D.
    gm_mask, brain_mask, template_mask : numpy.ndarray
        3D boolean masks on the same grid.

    Returns
    -------
    dict
        ``fd_mean_mm``, ``fd_max_mm``, ``fd_percent_over_0.5mm`` (Power's FD),
        ``tsnr_gm_median``, ``brain_mask_dice_template``, ``n_volumes``.
    """
    fd = confounds["framewise_displacement"].to_numpy()
    return {
        "n_volumes": len(fd),
        "fd_mean_mm": float(fd[1:].mean()),
        "fd_max_mm": float(fd.max()),
        "fd_percent_over_0.5mm": float(100 * (fd > FD_THRESHOLD_MM).mean()),
        "tsnr_gm_median": float(np.median(tsnr[gm_mask])) if gm_mask.any() else 0.0,
        "brain_mask_dice_template": dice(brain_mask, template_mask),
    }


def motion_figure(confounds: pd.DataFrame, out_png: str | Path) -> None:
    """Translations (mm), rotations (degrees) and FD (mm) over the run."""
    fig, axes = plt.subplots(3, 1, figsize=(8, 6), sharex=True)
    for column in MOTION_COLUMNS[:3]:
        axes[0].plot(confounds[column], label=column)
    for column in MOTION_COLUMNS[3:]:
        axes[1].plot(np.rad2deg(confounds[column]), label=column)
    axes[2].plot(confounds["framewise_displacement"], color="k", label="FD (Power)")
    axes[2].axhline(FD_THRESHOLD_MM, color="r", linestyle="--", linewidth=0.8)
    for ax, unit in zip(axes, ("mm", "degrees", "mm"), strict=True):
        ax.set_ylabel(unit)
        ax.legend(loc="upper right", fontsize=7, ncol=3)
    axes[2].set_xlabel("volume")
    fig.suptitle("Head motion (realignment parameters and framewise displacement)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def carpet_figure(bold: nib.Nifti1Image, mask: nib.Nifti1Image, tr: float, out_png) -> None:
    """nilearn's carpet plot of the brain voxels (Power 2017)."""
    display = plotting.plot_carpet(
        bold, mask_img=mask, t_r=tr, standardize="zscore_sample", title="Carpet plot (brain)"
    )
    display.savefig(out_png, dpi=100)
    plt.close("all")


def registration_figure(
    boldref: nib.Nifti1Image, template_mask: nib.Nifti1Image, out_png: str | Path
) -> None:
    """Mean BOLD in MNI with the template's brain outline on top."""
    display = plotting.plot_anat(boldref, display_mode="ortho", title="EPI -> MNI", dim=-0.5)
    display.add_contours(template_mask, levels=[0.5], colors="r", linewidths=1)
    display.savefig(out_png, dpi=100)
    display.close()
