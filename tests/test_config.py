"""config.yaml is validated at start-up; BIDS input is read in place."""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import REPO, run_snakemake

pytestmark = pytest.mark.workflow


def _dicom_config(tmp_path, **extra):
    (tmp_path / "dicom").mkdir(exist_ok=True)
    (tmp_path / "participants.tsv").write_text("participant_id\tgroup\n01\tA\n02\tB\n")
    config = {
        "participants": "participants.tsv",
        "positive_group": "A",
        "input": {"kind": "dicom", "path": "dicom"},
    }
    config.update(extra)
    return config


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"outptu_dir": "x"}, "'outptu_dir' was unexpected"),
        ({"input": {"kind": "dicom", "path": "dicom", "modalitys": ["T1w"]}}, "'modalitys'"),
        ({"input": {"kind": "nifti", "path": "dicom"}}, "'nifti' is not one of"),
        ({"dicom": {"series": {"T1w": {"include": 3}}}}, "3 is not of type 'string'"),
        ({"dicom": {"series": {"flair": {"include": "x"}}}}, "'flair' was unexpected"),
    ],
)
def test_bad_config_stops_with_key_named(tmp_path, extra, named):
    run = run_snakemake(tmp_path, _dicom_config(tmp_path, **extra), "-n")
    assert run.returncode != 0
    assert named in run.stdout, run.stdout[-2000:]


def test_bad_participants_stops_before_any_job(tmp_path):
    config = _dicom_config(tmp_path)
    (tmp_path / "participants.tsv").write_text("participant_id\tgroup\n01\tA\n02\tB\n03\tC\n")
    run = run_snakemake(tmp_path, config, "-n")
    assert run.returncode != 0
    assert "exactly two groups, found 3" in run.stdout


def test_participants_required_for_dicom(tmp_path):
    config = _dicom_config(tmp_path)
    config["participants"] = None
    run = run_snakemake(tmp_path, config, "-n")
    assert run.returncode != 0
    assert "'participants' is required for input.kind 'dicom'" in run.stdout


@pytest.mark.shared
def test_bids_input_needs_no_conversion(shared_data, tmp_path):
    config = {
        "positive_group": "depr",
        "output_dir": "out",
        "input": {"kind": "bids", "path": str(shared_data / "bids_t1w"), "modalities": ["T1w"]},
    }
    run = run_snakemake(tmp_path, config, "-n", "rawdata")
    assert run.returncode == 0, run.stdout[-2000:]
    assert "Nothing to be done" in run.stdout
    assert not re.search(r"^convert\s", run.stdout, re.MULTILINE)


@pytest.mark.shared
def test_bids_input_missing_modality_lists_subjects(shared_data, tmp_path):
    config = {
        "positive_group": "depr",
        "input": {"kind": "bids", "path": str(shared_data / "bids_t1w")},
    }
    run = run_snakemake(tmp_path, config, "-n", "rawdata")
    assert run.returncode != 0
    assert "no image for sub-01 (bold), sub-05 (bold)" in run.stdout
    assert "set input.modalities" in run.stdout


def test_configuration_page_matches_the_schema():
    """docs/configuration.md is what the schema's descriptions and config.yaml generate."""
    from neurofusion.config_reference import configuration_reference

    schema = yaml.safe_load((REPO / "rules" / "schemas" / "config.schema.yaml").read_text())
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    page = (REPO / "docs" / "configuration.md").read_text()
    assert page == configuration_reference(schema, config), (
        "docs/configuration.md is stale: python -m neurofusion.config_reference "
        "> docs/configuration.md"
    )


def test_a_key_without_description_is_refused():
    from neurofusion.config_reference import configuration_reference

    schema = {"properties": {"a": {"type": "string", "default": "x"}}}
    with pytest.raises(ValueError, match="no description for a"):
        configuration_reference(schema, {})
