"""Scanner DICOM to BIDS raw data: series discovery, selection, dcm2niix, anonymisation."""

from neurofusion.dicom.convert import convert_subject
from neurofusion.dicom.discovery import SeriesInfo, discover_series
from neurofusion.dicom.select import SeriesRule, select_series

__all__ = ["SeriesInfo", "SeriesRule", "convert_subject", "discover_series", "select_series"]
