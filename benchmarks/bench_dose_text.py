"""Time to read one printed dose (issue #11 goal: under 10 ms per string, every string).

Reads the real printed doses of ``tests/data/printed_doses.csv`` and 3,000 random
dose-like strings with :func:`evmeta.harmonize.doses.parse_dose` (no caching), and, side by
side, with the first-wave parser (``parse_dose`` as of commit 49369a5, loaded from git) as the
baseline. Prints the median and the slowest string of each, and how many corpus strings each
reads correctly.

Run: ``.venv/bin/python benchmarks/bench_dose_text.py``
"""

from __future__ import annotations

import csv
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from evmeta.errors import DoseError
from evmeta.harmonize.doses import parse_dose

ROOT = Path(__file__).resolve().parent.parent
BASELINE_COMMIT = "49369a5"
PIECES = [
    "1", "10", "1012", " ", "x", "×", "*", "^", "(", ")", "e", ".", ",", "-", "/", "µg", "mg", "ul",
    "kg", "particles", "EVs", "cells", " per ", "mouse", "dose", "daily", " for ", "weeks", "every",
    "twice", "times", " or ", "NR", "⁹", "from", "CM", "0", "99999",
]  # fmt: skip


def _baseline():
    source = subprocess.run(
        ["git", "show", f"{BASELINE_COMMIT}:evmeta/harmonize/doses.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_doses.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("baseline_doses", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.parse_dose


def _times(parse, texts):
    """Best of 3 per string (scheduler noise on a shared machine is not the parser's)."""
    for text in texts[:5]:  # warm-up: pint registry, regex compilation, TOML tables
        _once(parse, text)
    return [min(_once(parse, text) for _ in range(3)) for text in texts]


def _once(parse, text) -> float:
    start = time.perf_counter()
    try:
        parse(text)
    except DoseError:
        pass
    return time.perf_counter() - start


def _correct(parse, rows, context: bool = True):
    """Rows read right; ``context``: pass each row's ``mass_quantity`` (the arm it was printed
    for), which the first-wave parser does not take."""
    good = 0
    for row in rows:
        try:
            quantity = row.get("mass_quantity") or "protein"
            dose = parse(row["text"], mass_quantity=quantity) if context else parse(row["text"])
        except DoseError:
            good += bool(row["refusal"])
            continue
        good += (
            not row["refusal"]
            and abs(dose.value - float(row["value"])) <= 1e-9 * float(row["value"])
            and (dose.quantity, dose.basis) == (row["quantity"], row["basis"])
        )
    return good


def main() -> None:
    with (ROOT / "tests" / "data" / "printed_doses.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    rng = random.Random(11)
    fuzz = ["".join(rng.choices(PIECES, k=rng.randint(1, 30))) for _ in range(3000)]
    corpus = [row["text"] for row in rows]
    baseline = _baseline()
    print("| parser | strings | median | slowest | corpus read right |")
    print("| --- | --- | --- | --- | --- |")
    for name, parse in (("evmeta (issue 25)", parse_dose), (f"first wave ({BASELINE_COMMIT})", baseline)):
        for label, texts in (("corpus", corpus), ("random", fuzz)):
            times = _times(parse, texts)
            right = f"{_correct(parse, rows, parse is parse_dose)}/{len(rows)}" if label == "corpus" else ""
            print(
                f"| {name} | {len(texts)} {label} | {statistics.median(times) * 1e3:.3f} ms "
                f"| {max(times) * 1e3:.3f} ms | {right} |"
            )


if __name__ == "__main__":
    sys.exit(main())
