"""Exceptions and the validation problem record shared by every layer."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["error", "note"]


@dataclass(frozen=True)
class Problem:
    """One finding about one cell (or row, or sheet) of an extraction workbook.

    Attributes
    ----------
    sheet : str
        Sheet name (``outcomes``) or CSV file stem.
    row : int or None
        Row number as a reviewer sees it in Excel (header = 1); None for sheet-level findings.
    column : str or None
        Column name from the schema (or the header as typed); None for row-level findings.
    value : Any
        What was read in the cell, for the message.
    message : str
        What is wrong and what was expected.
    severity : {"error", "note"}
        Errors keep the row out of the analysis; notes are accepted with a remark.
    column_letter : str or None
        Excel column letter (``H``), when known.
    check : str or None
        Name of the data check that made a note (``sd_sem_ratio``, ``sd_notes_say_sem``,
        ``cv_outlier``, ``dose_text``; see docs/validation.md); None for reading remarks.
    dependents : tuple of (sheet, row)
        Rows left out because of this finding and named only in this one line: rows that
        refer to this row, or the other EV rows of a group that cannot be paired.
    """

    sheet: str
    row: int | None
    column: str | None
    value: Any
    message: str
    severity: Severity = "error"
    column_letter: str | None = None
    check: str | None = None
    dependents: tuple[tuple[str, int], ...] = ()

    @property
    def cell(self) -> str:
        """Excel-style reference such as ``outcomes!H14`` (or ``outcomes!14`` for a row)."""
        where = f"{self.column_letter or ''}{self.row if self.row is not None else ''}"
        return f"{self.sheet}!{where}" if where else self.sheet

    def __str__(self) -> str:
        column = f" {self.column}" if self.column else ""
        return f"{self.cell}{column}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cell"] = self.cell
        if out["value"] is not None and not isinstance(out["value"], (str, int, float, bool)):
            out["value"] = str(out["value"])
        return out


class EvmetaError(Exception):
    """Base class for errors that evmeta reports to users."""


class ExtractionError(EvmetaError):
    """An extraction workbook has errors; ``.problems`` lists every one of them.

    ``fatal`` is True when the file could not be read at all (not a workbook, too large,
    no extraction sheets); ``extraction`` holds the rows that did validate, if any.
    """

    def __init__(self, problems: list[Problem], *, fatal: bool = False, extraction: Any = None):
        self.problems = list(problems)
        self.fatal = fatal
        self.extraction = extraction
        errors = [p for p in self.problems if p.severity == "error"]
        head = "\n".join(str(p) for p in errors[:10])
        more = f"\n... and {len(errors) - 10} more" if len(errors) > 10 else ""
        super().__init__(f"{len(errors)} error(s) in the extraction:\n{head}{more}")


class DoseError(EvmetaError, ValueError):
    """A dose string could not be read."""


class ModelError(EvmetaError, ValueError):
    """A model cannot be fitted to the data as given."""


class SpecError(EvmetaError, ValueError):
    """An analysis spec has an unknown key or a bad value."""


class InputError(EvmetaError, ValueError):
    """An argument or input value is not one evmeta accepts (a bad option, a missing column)."""


class UnknownNameError(EvmetaError, KeyError):
    """A name (column, vocabulary, parameter) that does not exist was asked for."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class PlotError(EvmetaError, ValueError):
    """A figure cannot be drawn from the data or result as given."""


class ConvergenceWarning(UserWarning):
    """A Bayesian fit did not meet the convergence criteria (R-hat, ESS, divergences)."""


class PathError(EvmetaError, ValueError):
    """A path cannot be read or written safely as asked (not a regular file, an input, exists)."""


class OutputExistsError(PathError):
    """A Python writer was asked to write over an existing file without ``overwrite=True``."""
