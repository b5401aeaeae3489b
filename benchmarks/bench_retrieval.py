"""Query latency of the feature library: a 10,000-entry gallery of 128-d vectors.

One fold of one model (``fusion``, 128-d like its fused features): 10,000 gallery and 100
query entries of random float32 vectors in two groups, written to a SQLite library in a
temporary folder. Timed, as medians of repeated runs:

* ``write_library``: writing the whole library (once);
* ``load_gallery``: reading the fold's gallery vectors back from SQLite;
* ``nearest``: one query against the loaded gallery, k = 10 (the issue's target: 10 ms);
* ``search_subject``: ``neurofusion retrieve`` without the process start: reading the
  fold, then the query;
* ``retrieval_scores``: the evaluation of all 100 queries (full ranking, precision@k,
  recall@k, AP).

Run: ``python benchmarks/bench_retrieval.py [--repeats 50]``; writes
benchmarks/results/retrieval.json.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from common import measure, write_result

from neurofusion.retrieval.evaluate import retrieval_scores
from neurofusion.retrieval.library import Entries, read_entries, write_library
from neurofusion.retrieval.search import nearest, search_subject

N_GALLERY = 10_000
N_QUERIES = 100
DIM = 128
K = 10
TARGET_SECONDS = 0.010


def synthetic_entries() -> Entries:
    """Random 128-d vectors: the queries first, then the gallery, groups alternating."""
    n = N_QUERIES + N_GALLERY
    rng = np.random.default_rng(0)
    return Entries(
        model="fusion",
        fold=0,
        participant_ids=[f"sub-{i:05d}" for i in range(n)],
        groups=["StD" if i % 2 else "HC" for i in range(n)],
        roles=["query"] * N_QUERIES + ["gallery"] * N_GALLERY,
        vectors=rng.standard_normal((n, DIM), dtype=np.float32),
        metadata=[{"age": int(age)} for age in rng.integers(18, 30, n)],
    )


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark and write benchmarks/results/retrieval.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args(argv)
    entries = synthetic_entries()
    with tempfile.TemporaryDirectory() as scratch:
        library = Path(scratch) / "library.sqlite"
        results = {
            "n_gallery": N_GALLERY,
            "n_queries": N_QUERIES,
            "dim": DIM,
            "k": K,
            "target_seconds": TARGET_SECONDS,
            "write_library": measure(lambda: write_library(library, [entries]), 1),
            "library_mb": library.stat().st_size / 2**20,
            "load_gallery": measure(
                lambda: read_entries(library, "fusion", 0, "gallery"), args.repeats
            ),
        }
        gallery = read_entries(library, "fusion", 0, "gallery")
        queries = read_entries(library, "fusion", 0, "query")
        results["nearest"] = measure(
            lambda: nearest(queries.vectors[0], gallery.vectors, K), args.repeats
        )
        results["search_subject"] = measure(
            lambda: search_subject(library, "sub-00000", "fusion", K), args.repeats
        )
        results["retrieval_scores"] = measure(
            lambda: retrieval_scores(
                queries.vectors, queries.groups, gallery.vectors, gallery.groups, K
            ),
            max(1, args.repeats // 10),
        )
    results["nearest_within_target"] = results["nearest"]["seconds_median"] <= TARGET_SECONDS
    path = write_result("retrieval", results)
    print(path.read_text())
    return results


if __name__ == "__main__":
    main()
