"""BIDS names and paths, the participants table, and dataset descriptions."""

from neurofusion.bids.layout import ROLE_ENTITIES, find_bids_image, raw_image_path
from neurofusion.bids.participants import load_participants, subject_label

__all__ = [
    "ROLE_ENTITIES",
    "find_bids_image",
    "load_participants",
    "raw_image_path",
    "subject_label",
]
