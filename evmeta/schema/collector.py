"""The problem list validation fills: every check adds to it, validation raises once."""

from __future__ import annotations

from evmeta.errors import Problem


class _Collector:
    """Problems found so far (errors and notes), in the order they were found."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, sheet, row, column, value, message, severity="error", letter=None) -> None:
        self.problems.append(Problem(sheet, row, column, value, message, severity, letter))
