"""Benchmark: de-duplicate 50,000 simulated search records (goal: under 30 s on 2 cores).

Run ``.venv/bin/python benchmarks/bench_dedupe.py``; also prints pairwise precision and
recall against the known clusters.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._search_records import pairwise_precision_recall, simulate_records
from evmeta.review.dedupe import deduplicate


def main(publications: int = 30_000) -> None:
    records, truth = simulate_records(publications, seed=2026)
    start = time.perf_counter()
    result = deduplicate(records)
    elapsed = time.perf_counter() - start
    precision, recall = pairwise_precision_recall(list(result.table["cluster_id"]), truth)
    print(
        f"deduplicate: {len(records):,} records, {result.counts['pairs_compared']:,} pairs compared, "
        f"{elapsed:.1f} s; pairwise precision {precision:.4f}, recall {recall:.4f}"
    )


if __name__ == "__main__":
    main()
