"""The ``neurofusion simulate`` subcommand: write a simulated cohort (DICOM + truth)."""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from neurofusion.simulate.cohort import cohort_participants, simulate_subject, write_participants
from neurofusion.simulate.settings import PRESETS, SLICE_ORDERS, settings_from_config


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``simulate`` to an argparse subparsers object; its handler is :func:`run`."""
    parser = subparsers.add_parser(
        "simulate",
        help="simulate a cohort: DICOM a scanner could have produced, plus the ground truth",
        description=(
            "Writes OUT/participants.tsv, OUT/sourcedata/sub-X/ (classic Siemens DICOM) and "
            "OUT/truth/sub-X/ (ground truth, documented in each README.json)."
        ),
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    parser.add_argument(
        "--n-per-group", type=int, help="subjects per group (default: the preset's)"
    )
    parser.add_argument("--effect-size", type=float, help="planted group effect (0 = none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slice-order", choices=SLICE_ORDERS)
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--subjects", nargs="+", metavar="sub-XXX", help="simulate only these participants"
    )
    parser.add_argument("-j", "--jobs", type=int, default=1, help="subjects in parallel")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Simulate the cohort described by parsed ``args``; returns the exit status (0)."""
    config = {
        "preset": args.preset,
        "n_per_group": args.n_per_group,
        "effect_size": args.effect_size,
        "seed": args.seed,
        "slice_order": args.slice_order,
    }
    settings = settings_from_config({k: v for k, v in config.items() if v is not None})
    table = cohort_participants(settings)
    if args.subjects:
        unknown = sorted(set(args.subjects) - set(table.participant_id))
        if unknown:
            raise SystemExit(f"simulate: {unknown} not in the cohort ({len(table)} subjects)")
        table = table[table.participant_id.isin(args.subjects)]
    out = Path(args.out)
    write_participants(settings, out / "participants.tsv")
    jobs = [
        (pid, group, settings, out / "sourcedata" / pid, out / "truth" / pid)
        for pid, group in zip(table.participant_id, table.group, strict=True)
    ]
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for future in [pool.submit(simulate_subject, *job) for job in jobs]:
                future.result()
    else:
        for job in jobs:
            simulate_subject(*job)
    return 0
