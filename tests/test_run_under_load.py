"""`evmeta run` under load (issue 21 item 4): runs succeed and give identical results while
two other processes keep both cores busy. The full 30-run check is
``benchmarks/stress_run.py`` (its last result is in benchmarks/README.md); this slow test
runs three."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

pytestmark = pytest.mark.slow


def test_three_runs_under_two_busy_processes_succeed_identically():
    from benchmarks.stress_run import stress

    summary = stress(runs=3, busy=2, spec=ROOT / "analyses" / "example.toml", timeout=240)
    assert summary["succeeded"] == 3, summary["errors"]
    assert summary["identical"], "results.csv or heterogeneity.csv differed between runs"
