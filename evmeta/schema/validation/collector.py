"""The problem list validation fills: every check adds to it, validation raises once.

A row left out only because a row it refers to has errors is a *dependent*: it is not
reported on its own line but folded into the line of its root cause ("and 14 rows that
depend on it are left out until it is fixed (outcomes rows 20-33)"), so one mistake gives
one line. An EV outcome row whose control row has errors depends on that row too.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from evmeta.errors import Problem

Where = tuple[str, int]


class _Collector:
    """Problems found so far (errors and notes), in the order they were found."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        #: (sheet, row) of a dependent row -> (sheet, row) of the row it depends on.
        self.dependents: dict[Where, Where] = {}

    def add(
        self, sheet, row, column, value, message, severity="error", letter=None, check=None, dependents=()
    ) -> None:
        self.problems.append(Problem(sheet, row, column, value, message, severity, letter, check, dependents))

    def depend(self, sheet: str, row: int, on_sheet: str, on_row: int) -> None:
        """Row ``sheet!row`` is left out because row ``on_sheet!on_row`` has errors."""
        self.dependents.setdefault((sheet, row), (on_sheet, on_row))

    def fold(self) -> None:
        """Attach every dependent row to the first error line of its root cause."""
        roots: dict[Where, list[Where]] = defaultdict(list)
        for where in self.dependents:
            roots[self._root(where)].append(where)
        for root, rows in roots.items():
            text = _dependents_text(rows)
            index = next(
                (
                    i
                    for i, p in enumerate(self.problems)
                    if p.severity == "error" and (p.sheet, p.row) == root
                ),
                None,
            )
            if index is None:
                self.add(root[0], root[1], None, None, f"this row has errors; {text}")
                index = len(self.problems) - 1
            first = self.problems[index]
            folded = tuple(sorted(set(rows) | set(first.dependents)))
            self.problems[index] = replace(first, message=f"{first.message}; {text}", dependents=folded)
        self.dependents = {}

    def _root(self, where: Where) -> Where:
        seen = {where}
        while where in self.dependents:
            where = self.dependents[where]
            if where in seen:  # a cycle cannot happen (keys point to other sheets); stop anyway
                break
            seen.add(where)
        return where


def _row_ranges(rows: list[int]) -> str:
    """'5, 7-9' for rows [5, 7, 8, 9]."""
    parts: list[tuple[int, int]] = []
    for row in sorted(set(rows)):
        if parts and parts[-1][1] == row - 1:
            parts[-1] = (parts[-1][0], row)
        else:
            parts.append((row, row))
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in parts)


def _dependents_text(rows: list[Where]) -> str:
    """'and 3 rows that refer to it are left out until it is fixed (arms row 5; outcomes rows 8-9)'."""
    by_sheet: dict[str, list[int]] = defaultdict(list)
    for sheet, row in rows:
        by_sheet[sheet].append(row)
    listed = "; ".join(
        f"{sheet} row{'s' if len(set(r)) > 1 else ''} {_row_ranges(r)}" for sheet, r in by_sheet.items()
    )
    n = len(set(rows))
    which = f"{n} rows that depend on it are" if n > 1 else "1 row that depends on it is"
    return f"and {which} left out until it is fixed ({listed})"
