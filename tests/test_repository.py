"""The suite is self-contained: no test reads a file outside the repository.

A clone of the project has no folder beside it (no shared reference folder), so a test that names a
path above the repository root passes on one machine and fails on every other.
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# Ways a path can climb out of the repository: a literal "../" (other than the specs' own
# "../extraction/" and "../analyses/", which stay inside), the root's parent, or a chain of
# .parent calls longer than the two that lead from a test file to the root.
OUTSIDE = re.compile(
    r"\.\./(?!extraction/|analyses/)|ROOT\s*\.\s*parent|parent\s*\.\s*parent\s*\.\s*parent|parents\[[2-9]\]|[\"']/work/|shared/validation"
)


def test_no_test_names_a_path_outside_the_repository():
    offenders = []
    for path in TESTS.rglob("*.py"):
        if path.name == Path(__file__).name:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(TESTS)}:{number}: {line.strip()}")
    assert not offenders, "tests that read outside the repository:\n" + "\n".join(offenders)


def test_the_detector_catches_the_usual_forms():
    up, root = "..", "ROOT"  # written apart so that this file does not trip the check it tests
    for line in [f'SHARED = {root}.parent / "data"', f'open("{up}/elsewhere/x.csv")', "p.parents[3]"]:
        assert OUTSIDE.search(line), line
    assert not OUTSIDE.search('DATA = ROOT / "tests" / "data"')
