"""Dataset-level BIDS files: dataset_description.json, participants.tsv, .bidsignore."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from neurofusion import __version__
from neurofusion.fileio import atomic_path, write_json, write_text

#: BIDS version the written datasets follow.
BIDS_VERSION = "1.10.0"


def write_raw_dataset(participants: pd.DataFrame, root: str | Path, name: str) -> None:
    """Write the dataset-level files of a BIDS raw dataset made by neurofusion.

    Parameters
    ----------
    participants : pandas.DataFrame
        Checked participants table (see :func:`neurofusion.bids.load_participants`).
    root : str or Path
        BIDS root.
    name : str
        Dataset name for dataset_description.json.
    """
    root = Path(root)
    write_json(
        root / "dataset_description.json",
        {
            "Name": name,
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "raw",
            "GeneratedBy": [{"Name": "neurofusion", "Version": __version__}],
        },
    )
    columns = [c for c in participants.columns if c != "subject"]
    with atomic_path(root / "participants.tsv") as part:
        participants[columns].to_csv(part, sep="\t", index=False, na_rep="n/a")
    write_text(root / ".bidsignore", "*_provenance.json\n")
