"""neurofusion: multimodal MRI classification workflow (DICOM in, evaluation out).

The library holds all logic; the Snakemake rules and ``scripts/`` only call it.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("neurofusion")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = ["__version__"]
