"""Convert one subject's scanner DICOM into BIDS raw data with dcm2niix.

Each chosen series is converted on its own (its files are linked into a staging folder),
so unreadable files found during discovery never reach dcm2niix, and series of other
roles (localisers, diffusion, ...) cost nothing. dcm2niix runs with ``-ba y``
(anonymised sidecar) and ``-z y`` (gzip); the sidecar is then stripped further by
:func:`neurofusion.dicom.anonymise.anonymise_sidecar`.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import dcm2niix
import nibabel as nib
import pandas as pd

from neurofusion.bids.layout import raw_image_path
from neurofusion.dicom.anonymise import anonymise_sidecar
from neurofusion.dicom.discovery import SeriesInfo, discover_series
from neurofusion.dicom.select import SeriesRule, select_series
from neurofusion.errors import InputError
from neurofusion.fileio import atomic_path, files_checksum, write_json
from neurofusion.provenance import write_provenance

log = logging.getLogger(__name__)


def dcm2niix_version() -> str:
    """Version string of the dcm2niix binary shipped by the ``dcm2niix`` PyPI package."""
    run = subprocess.run([dcm2niix.bin, "-v"], capture_output=True, text=True, check=False)
    return run.stdout.strip().splitlines()[-1]


def convert_subject(
    subject: str,
    source: str | Path,
    rawdata_root: str | Path,
    modalities: Sequence[str],
    rules: Mapping[str, SeriesRule],
    on_multiple: str = "latest",
) -> dict[str, Path]:
    """Discover, select, convert, check and write one subject's raw images.

    Parameters
    ----------
    subject : str
        Participant label without ``sub-``.
    source : str or Path
        The subject's DICOM folder (any nesting inside).
    rawdata_root : str or Path
        BIDS root to write into (``{output_dir}/rawdata``).
    modalities : sequence of {"T1w", "bold"}
        The roles the subject must have.
    rules : mapping of role to SeriesRule
        Series-matching rules (see :mod:`neurofusion.dicom.select`).
    on_multiple : {"latest", "error"}
        Policy when several series fit a role.

    Returns
    -------
    dict of str to Path
        Written image per role.

    Raises
    ------
    InputError
        Missing folder, no DICOM, incomplete or ambiguous series, wrong dimensionality,
        BOLD without RepetitionTime, or a dcm2niix failure. Nothing is written then.
    """
    source = Path(source)
    if not source.is_dir():
        raise InputError(
            subject,
            source,
            "the participant has no DICOM folder",
            f"put the participant's DICOM under {source.parent}/sub-{subject} (or "
            f"{source.parent}/{subject}), or remove sub-{subject} from participants.tsv",
        )
    series = discover_series(source, subject)
    chosen = {
        role: select_series(series, rules[role], subject, source, on_multiple)
        for role in modalities
    }
    with tempfile.TemporaryDirectory(prefix=f"neurofusion-sub-{subject}-") as tmp:
        converted = {
            role: _convert_series(info, Path(tmp) / role, subject) for role, info in chosen.items()
        }
        for role, (nifti, sidecar) in converted.items():
            _check_image(role, nifti, sidecar, chosen[role], subject)
        written = {}
        for role, (nifti, sidecar) in converted.items():
            dest = raw_image_path(rawdata_root, subject, role)
            with atomic_path(dest) as part:
                shutil.copyfile(nifti, part)
            write_json(raw_image_path(rawdata_root, subject, role, ".json"), sidecar)
            written[role] = dest
            log.info("sub-%s: %s -> %s", subject, chosen[role].label, dest)
    _write_scans(rawdata_root, subject, chosen, source)
    write_provenance(
        Path(rawdata_root) / f"sub-{subject}" / f"sub-{subject}_provenance.json",
        step="convert",
        parameters={
            "modalities": list(modalities),
            "rules": {role: vars(rule) for role, rule in rules.items()},
            "on_multiple": on_multiple,
            "dcm2niix": dcm2niix_version(),
            "dcm2niix_args": ["-b", "y", "-ba", "y", "-z", "y"],
        },
        extra={
            "source_series": {
                role: {
                    "series_number": info.number,
                    "series_description": info.description or info.protocol,
                    "n_files": len(info.files),
                    "sha256_of_files": files_checksum(info.files),
                }
                for role, info in chosen.items()
            }
        },
    )
    return written


def _convert_series(info: SeriesInfo, workdir: Path, subject: str) -> tuple[Path, dict]:
    """Run dcm2niix on one series; return the NIfTI and its anonymised sidecar."""
    staging, out = workdir / "dicom", workdir / "nifti"
    staging.mkdir(parents=True)
    out.mkdir()
    for index, path in enumerate(info.files):
        (staging / f"{index:06d}.dcm").symlink_to(path.resolve())
    cmd = [dcm2niix.bin, "-b", "y", "-ba", "y", "-z", "y", "-f", "%s", "-o", str(out), str(staging)]
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in (run.stdout + run.stderr).splitlines():
        if line.lower().startswith(("warning", "error")):
            log.warning("sub-%s: dcm2niix on %s: %s", subject, info.label, line)
    niftis = sorted(out.glob("*.nii.gz"))
    folder = info.files[0].parent
    if run.returncode != 0 or len(niftis) != 1:
        what = "no image" if not niftis else f"{len(niftis)} images ({[p.name for p in niftis]})"
        raise InputError(
            subject,
            folder,
            f"dcm2niix turned {info.label} into {what} (exit status {run.returncode})",
            "check the series on the scanner console or re-export it; mixed echoes, "
            "phase images or derived images in one series are not supported",
        )
    sidecar = json.loads(niftis[0].with_suffix("").with_suffix(".json").read_text())
    return niftis[0], anonymise_sidecar(sidecar)


def _check_image(role: str, nifti: Path, sidecar: dict, info: SeriesInfo, subject: str) -> None:
    """Refuse a 4D T1w, a 3D BOLD and a BOLD without RepetitionTime; add TaskName."""
    img = nib.load(nifti)
    folder = info.files[0].parent
    volumes = img.shape[3] if img.ndim == 4 else 1
    if role == "T1w" and volumes > 1:
        raise InputError(
            subject,
            folder,
            f"{info.label} was chosen as T1w but holds {volumes} volumes (4D)",
            "tighten dicom.series.T1w.include/exclude so that a single 3D anatomical series "
            "is chosen",
        )
    if role == "bold":
        if volumes < 2:
            raise InputError(
                subject,
                folder,
                f"{info.label} was chosen as resting BOLD but is a single 3D volume",
                "export the whole run (all volumes), or tighten dicom.series.bold.include",
            )
        if not sidecar.get("RepetitionTime"):
            raise InputError(
                subject,
                folder,
                f"{info.label} has no RepetitionTime (DICOM tag 0018,0080), so its timing is "
                "unknown",
                "re-export the series with full headers, or add RepetitionTime (seconds) "
                "to the sidecar and use input.kind: bids",
            )
        if not sidecar.get("SliceTiming"):
            log.warning(
                "sub-%s: %s has no SliceTiming; preprocessing will use the configured "
                "fallback slice order",
                subject,
                info.label,
            )
        sidecar["TaskName"] = "rest"


def _write_scans(
    rawdata_root: str | Path, subject: str, chosen: Mapping[str, SeriesInfo], source: Path
) -> None:
    """Write ``sub-<label>_scans.tsv``: which DICOM series became which file."""
    rows = []
    for role, info in chosen.items():
        image = raw_image_path(rawdata_root, subject, role)
        rows.append(
            {
                "filename": f"{image.parent.name}/{image.name}",
                "source_series_number": info.number,
                "source_series_description": info.description or info.protocol,
                "source_folder": str(info.files[0].parent.relative_to(source)),
                "n_dicom_files": len(info.files),
                "n_volumes": info.n_volumes,
            }
        )
    dest = Path(rawdata_root) / f"sub-{subject}" / f"sub-{subject}_scans.tsv"
    with atomic_path(dest) as part:
        pd.DataFrame(rows).to_csv(part, sep="\t", index=False)
