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

    def __init__(self, problems: list[Problem], *, fatal: bool = False, extraction: Any = None) -> None:
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


class RobustUnavailable(ModelError):
    """CR2 inference is not defined for these data (the reason is the message); the
    model-based fit is reported instead, with that reason as a note."""


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


class MissingExtraError(EvmetaError, ImportError):
    """A feature needs an optional dependency group (an *extra*) that is not installed.

    The message names the feature and the ``pip install`` line that brings it.
    """


#: What a dose cell should hold, appended to the messages of unreadable doses.
DOSE_HINT = (
    "Expected one amount and a unit, e.g. '100 ug', '0.1 mg/kg', '1.5 x 10^9 particles/kg', "
    "'EVs from 2x10^6 cells', '30 ug/100 ul, i.v., every 2 weeks, four times'"
)


class FigureError(PlotError):
    """A figure cannot be drawn from these data as asked (the message says how to choose)."""


class PrismaError(EvmetaError):
    """The files of a review disagree, so a PRISMA count cannot be derived; says which and where."""


class DigitizedError(EvmetaError):
    """A WebPlotDigitizer export cannot be read or paired; the message names the place."""


class ScreeningError(EvmetaError):
    """A screening workbook cannot be read or disagrees with itself; ``problems`` lists why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        super().__init__(f"{len(errors)} error(s) in the screening log:\n" + "\n".join(map(str, errors[:10])))


class SchedulerError(EvmetaError):
    """The Dask scheduler given by address cannot be reached."""


class UnreadableInput(EvmetaError):
    """The input is not a workbook or CSV folder evmeta can read; the message says why."""


class NonFiniteNumber(ValueError):
    """A number that is infinite, too large for a float (beyond about 1.8e308) or NaN.

    Raised inside cell coercion and turned into a :class:`Problem` at the cell; it never
    reaches a user as an exception."""

    def __init__(self, text: str) -> None:
        super().__init__(
            f"expected a finite number, got {text!r} (infinite, not a number, or beyond the "
            "largest number a computer can hold, about 1.8 x 10^308)"
        )


class DoseTextError(DoseError):
    """A printed dose that cannot be read; ``reason`` is one of
    :data:`evmeta.schema.doses.tokens.REASONS`."""

    def __init__(self, text: Any, reason: str, detail: str) -> None:
        self.text = text
        self.reason = reason
        self.detail = detail
        hint = f". {DOSE_HINT}" if reason in {"no_unit", "no_amount", "unknown_unit"} else ""
        super().__init__(f"cannot read dose {text!r}: {detail} [{reason}]{hint}")


class ProjectError(EvmetaError):
    """A review project cannot be created, opened or updated; the message names the folder,
    file or database and what to do."""
