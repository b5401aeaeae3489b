"""The ``neurofusion retrieve`` subcommand: the library subjects nearest to a subject of the
cohort (``--subject``) or to a new one (``--t1`` and/or ``--connectome``)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from neurofusion.retrieval.new_subject import search_new_subject
from neurofusion.retrieval.search import search_subject


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``retrieve`` to an argparse subparsers object; its handler is :func:`run`."""
    parser = subparsers.add_parser(
        "retrieve",
        help="list the subjects of a feature library most similar to a given subject",
        description=(
            "Prints, as TSV on stdout, the k gallery subjects nearest (Euclidean distance "
            "between embeddings) to a subject, with their group and participants.tsv "
            "metadata. --subject: a cohort subject; without --fold, the fold in which it was "
            "held out is used, so its embedding comes from a model that never saw it, and "
            "the subject itself is never listed. --t1/--connectome: a new subject's MNI T1w "
            "and Fisher-z matrix (the pipeline's anat and connectome outputs), embedded by "
            "the final model (trained on every cohort subject) and compared with every "
            "cohort subject."
        ),
    )
    parser.add_argument("--library", type=Path, required=True, help="feature library (SQLite)")
    parser.add_argument("--subject", metavar="sub-X", help="query subject of the cohort")
    parser.add_argument("--t1", type=Path, help="new subject's T1w in MNI space (2 mm grid)")
    parser.add_argument("--connectome", type=Path, help="new subject's Fisher-z matrix (TSV)")
    parser.add_argument(
        "--mask", type=Path, help="brain mask of --t1 (default: the template's brain mask)"
    )
    parser.add_argument("--model", default="fusion", help="encoder (default: fusion)")
    parser.add_argument("--k", type=int, default=10, help="how many neighbours (default: 10)")
    parser.add_argument("--fold", type=int, help="with --subject: fold whose model to use")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the neighbours of the query subject; returns the exit status (0)."""
    if args.k < 1:
        raise SystemExit(f"retrieve: --k must be at least 1, got {args.k}")
    new = [name for name in ("t1", "connectome", "mask") if getattr(args, name) is not None]
    if (args.subject is None) == (not new) or (new == ["mask"]):
        raise SystemExit(
            "retrieve: give either --subject (a cohort subject) or --t1 and/or --connectome "
            "(a new subject, with an optional --mask of --t1)"
        )
    if args.subject is not None:
        table = search_subject(args.library, args.subject, args.model, args.k, args.fold)
        query = args.subject
    else:
        table = search_new_subject(
            args.library, args.model, args.k, args.t1, args.connectome, args.mask
        )
        query = "new subject"
    logging.getLogger("neurofusion").info(
        "%s (%s): %d nearest of model %s, fold %d",
        query,
        table.attrs["query_group"],
        len(table),
        args.model,
        table.attrs["fold"],
    )
    table.to_csv(sys.stdout, sep="\t", index=False, float_format="%.6g")
    return 0
