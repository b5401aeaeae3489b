"""Running a subject's nipype workflow: resumable working folder, crash files in the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from neurofusion.errors import NeurofusionError


class WorkflowError(NeurofusionError):
    """A nipype node of a subject's workflow crashed; the message holds the crash files."""


def _gather(**fields):
    """Return the workflow's outputs as one dict (identity nodes vanish from nipype's
    execution graph, so ``outputnode`` itself cannot be read after the run)."""
    return fields


def run_workflow(wf: pe.Workflow, base_dir: str | Path, subject: str) -> dict[str, Any]:
    """Run ``wf`` in ``base_dir`` (nipype's cache lets a rerun resume) and return its outputs.

    Parameters
    ----------
    wf : nipype Workflow
        A workflow with a node named ``outputnode``.
    base_dir : path
        nipype working directory of this subject and stage.
    subject : str
        ``sub-<label>``, for the error message.

    Returns
    -------
    dict
        The fields of ``outputnode`` after the run.

    Raises
    ------
    WorkflowError
        When a node crashes: the message holds the text of the new crash files, so the
        job's log shows what failed without a trip to the working folder.
    """
    base_dir = Path(base_dir).resolve()
    crash_dir = base_dir / "crash"
    wf.base_dir = str(base_dir)
    wf.config["execution"].update(
        {
            "crashfile_format": "txt",
            "crashdump_dir": str(crash_dir),
            "stop_on_first_crash": True,
            "remove_unnecessary_outputs": False,
        }
    )
    outputnode = wf.get_node("outputnode")
    fields = outputnode.outputs.copyable_trait_names()
    gather = pe.Node(
        niu.Function(function=_gather, input_names=fields, output_names=["outputs"]),
        name="gather_outputs",
    )
    wf.connect([(outputnode, gather, [(field, field) for field in fields])])
    already = set(crash_dir.glob("crash-*")) if crash_dir.is_dir() else set()
    try:
        graph = wf.run(plugin="Linear")
    except Exception as err:
        crashes = sorted(set(crash_dir.glob("crash-*")) - already) if crash_dir.is_dir() else []
        text = "\n".join(f"--- {c}\n{c.read_text()}" for c in crashes) or repr(err)
        raise WorkflowError(f"{subject}: {wf.name} failed\n{text}") from err
    (node,) = [node for node in graph.nodes() if node.name == "gather_outputs"]
    return node.result.outputs.outputs
