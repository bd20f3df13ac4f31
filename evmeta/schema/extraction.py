"""The validated extraction: one DataFrame per sheet, with provenance on every row."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from evmeta.errors import Problem
from evmeta.schema.columns import SHEETS

#: Provenance columns carried by every row of every sheet.
PROVENANCE_COLUMNS = ("_file", "_sheet", "_row")
#: Columns of :meth:`Extraction.notes_frame` (and of ``validation_notes.csv``).
NOTE_COLUMNS = ["sheet", "row", "cell", "column", "value", "check", "message"]


@dataclass
class Extraction:
    """A validated extraction workbook.

    Attributes
    ----------
    sheets : dict of str -> DataFrame
        One table per sheet (``studies``, ``preparations``, ``experiments``, ``arms``,
        ``outcomes``, ``risk_of_bias``); every row carries ``_file``, ``_sheet`` and
        ``_row`` (the Excel row number, header = 1).
    notes : list of Problem
        Accepted with a remark (fuzzy vocabulary matches, extra columns, ...) and the notes
        of the data checks (``Problem.check`` set: ``sd_sem_ratio``, ``sd_notes_say_sem``,
        ``cv_outlier``, ``dose_text``); :meth:`notes_frame` tabulates them.
    problems : list of Problem
        Errors; empty unless the extraction was read with ``strict=False``, in which case
        the rows they name are not in ``sheets``.
    path : Path
        The file or folder read.
    sha256 : str
        Hash of the input, for provenance.
    """

    sheets: dict[str, pd.DataFrame]
    path: Path
    sha256: str
    notes: list[Problem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def __getattr__(self, name: str) -> pd.DataFrame:
        sheets = self.__dict__.get("sheets", {})
        if name in sheets:
            return sheets[name]
        raise AttributeError(name)

    @property
    def studies(self) -> pd.DataFrame:
        return self.sheets["studies"]

    @property
    def preparations(self) -> pd.DataFrame:
        return self.sheets["preparations"]

    @property
    def experiments(self) -> pd.DataFrame:
        return self.sheets["experiments"]

    @property
    def arms(self) -> pd.DataFrame:
        return self.sheets["arms"]

    @property
    def outcomes(self) -> pd.DataFrame:
        return self.sheets["outcomes"]

    @property
    def risk_of_bias(self) -> pd.DataFrame:
        return self.sheets["risk_of_bias"]

    def notes_frame(self, *, checks_only: bool = False) -> pd.DataFrame:
        """The validation notes as a table (what ``validation_notes.csv`` holds).

        Parameters
        ----------
        checks_only : bool
            Only the notes of the data checks (``check`` set: SD-or-SEM signs, unreadable
            dose texts; docs/validation.md), not the reading remarks (fuzzy matches, ...).

        Returns
        -------
        DataFrame
            Columns :data:`NOTE_COLUMNS`: ``sheet``, ``row`` (Excel row, header = 1),
            ``cell`` (``outcomes!L14``), ``column``, ``value``, ``check``, ``message``.
        """
        notes = [n for n in self.notes if n.check or not checks_only]
        rows = [{k: n.to_dict()[k] for k in NOTE_COLUMNS} for n in notes]
        return pd.DataFrame(rows, columns=NOTE_COLUMNS).astype({"row": "Int64"})

    def counts(self) -> dict[str, int]:
        """Rows per sheet."""
        return {name: len(frame) for name, frame in self.sheets.items()}

    def summary(self) -> str:
        """A few lines for the terminal: rows per sheet and what they cover (the caller prints
        the totals of errors and notes)."""
        lines = [f"Extraction {self.path.name} (sha256 {self.sha256[:12]})"]
        for name in SHEETS:
            lines.append(f"  {name:<14} {len(self.sheets.get(name, ())):>5} rows")
        outcomes = self.sheets.get("outcomes")
        if outcomes is not None and len(outcomes):
            experiments = self.sheets["experiments"]
            lines.append(
                f"  {experiments['disease_model'].nunique()} disease models, "
                f"{self.sheets['preparations']['isolation_method'].nunique()} isolation methods, "
                f"{outcomes['outcome'].nunique()} outcomes"
            )
        return "\n".join(lines)
