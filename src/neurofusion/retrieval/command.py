"""The ``neurofusion retrieve`` subcommand: the library subjects nearest to one subject."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from neurofusion.retrieval.search import search_subject


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``retrieve`` to an argparse subparsers object; its handler is :func:`run`."""
    parser = subparsers.add_parser(
        "retrieve",
        help="list the subjects of a feature library most similar to one of its subjects",
        description=(
            "Prints, as TSV on stdout, the k gallery subjects nearest (Euclidean distance "
            "between embeddings) to SUBJECT, with their group and participants.tsv metadata. "
            "Without --fold, the fold in which SUBJECT was held out is used, so its embedding "
            "comes from a model that never saw it. The subject itself is never listed."
        ),
    )
    parser.add_argument("--library", type=Path, required=True, help="feature library (SQLite)")
    parser.add_argument("--subject", required=True, metavar="sub-X", help="query subject")
    parser.add_argument("--model", default="fusion", help="encoder (default: fusion)")
    parser.add_argument("--k", type=int, default=10, help="how many neighbours (default: 10)")
    parser.add_argument("--fold", type=int, help="fold whose model and gallery to use")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the neighbours of ``args.subject``; returns the exit status (0)."""
    if args.k < 1:
        raise SystemExit(f"retrieve: --k must be at least 1, got {args.k}")
    table = search_subject(args.library, args.subject, args.model, args.k, args.fold)
    logging.getLogger("neurofusion").info(
        "%s (%s): %d nearest of model %s, fold %d",
        args.subject,
        table.attrs["query_group"],
        len(table),
        args.model,
        table.attrs["fold"],
    )
    table.to_csv(sys.stdout, sep="\t", index=False, float_format="%.6g")
    return 0
