"""A job's log explains its failure: bad input in one line, a bug with its traceback."""

from __future__ import annotations

import logging

import pytest

from neurofusion.errors import InputError
from neurofusion.logs import run_step


def _bad_input():
    raise InputError("01", "x.nii.gz", "the T1w image is 4D", "give a 3D image")


def _bug():
    raise ZeroDivisionError("division by zero")


def test_bad_input_is_one_line_and_exit_status_1(tmp_path):
    log = tmp_path / "job.log"
    with pytest.raises(SystemExit) as stopped:
        run_step(log, _bad_input)
    assert stopped.value.code == 1
    text = log.read_text()
    assert "sub-01: the T1w image is 4D [x.nii.gz]. Fix: give a 3D image" in text
    assert "Traceback" not in text


def test_a_bug_keeps_its_traceback_in_the_log(tmp_path):
    log = tmp_path / "job.log"
    with pytest.raises(ZeroDivisionError):
        run_step(log, _bug)
    text = log.read_text()
    assert "unexpected error in _bug" in text and "Traceback" in text
    assert "ZeroDivisionError: division by zero" in text


def _nipype_node_line():
    import nipype  # noqa: F401 (its import adds a console handler to the "nipype" logger)

    logging.getLogger("nipype.workflow").info('[Node] Finished "n4"')


def test_nipype_node_lines_go_to_the_log_file_only(tmp_path, capsys):
    log = tmp_path / "job.log"
    run_step(log, _nipype_node_line)
    captured = capsys.readouterr()
    assert '[Node] Finished "n4"' in log.read_text()
    assert "Node" not in captured.out + captured.err
