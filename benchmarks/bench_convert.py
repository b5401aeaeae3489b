"""Seconds and peak memory to convert each real scanner series in ../shared/data/dicom.

Run: ``python benchmarks/bench_convert.py`` (writes benchmarks/results/convert.json).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import yaml
from common import measure, write_result

from neurofusion.dicom.convert import convert_subject
from neurofusion.dicom.select import rules_from_config

REPO = Path(__file__).resolve().parents[1]
DICOM = REPO.parent / "shared" / "data" / "dicom"


def main(repeats: int = 5) -> None:
    """Convert every series ``repeats`` times into a scratch folder; record medians."""
    rules = rules_from_config(yaml.safe_load((REPO / "config.yaml").read_text())["dicom"])
    results = {}
    for series in sorted(p for p in DICOM.iterdir() if (p / "dicom").is_dir()):
        with tempfile.TemporaryDirectory() as scratch:

            def convert(series=series, scratch=scratch):
                convert_subject("bench", series / "dicom", Path(scratch), ["bold"], rules)

            results[series.name] = measure(convert, repeats)
    print(write_result("convert", results))


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
