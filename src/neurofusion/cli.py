"""The ``neurofusion`` command: library entry points outside Snakemake.

Each sub-command lives in the package it belongs to and registers itself here.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from neurofusion import __version__
from neurofusion.errors import NeurofusionError
from neurofusion.logs import configure_logging
from neurofusion.retrieval import command as retrieve_command
from neurofusion.simulate import command as simulate_command


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="neurofusion",
        description="Multimodal MRI classification workflow: library commands. The "
        "whole workflow runs with `snakemake --cores N` in the repository.",
    )
    parser.add_argument("--version", action="version", version=f"neurofusion {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    simulate_command.register(subparsers)
    retrieve_command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    args = build_parser().parse_args(argv)
    configure_logging()
    try:
        args.func(args)
    except NeurofusionError as err:
        logging.getLogger("neurofusion").error("%s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
