"""Screening log: the workbook two reviewers fill between de-duplication and extraction.

``write_screening_sheet`` turns the records kept by ``evmeta dedupe`` into a workbook with
one row per record (record_id, title, authors, year, doi, database) and, per row, two
reviewers' title/abstract decisions, the consensus, two reviewers' full-text decisions, the
consensus, a reason for exclusion (dropdown of standard reasons) and the final decision.
``read_screening`` reads it back (``.xlsx``, ``.ods`` or CSV), collects every problem with
its sheet, row and column, and raises once; ``screening_agreement`` gives Cohen's kappa of
the two screeners per stage (Cohen 1960, as in ``evmeta reconcile``).

Reference: Page MJ et al. (2021) The PRISMA 2020 statement. BMJ 372:n71 (items 8, 16a).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from evmeta.errors import EvmetaError, Problem, ScreeningError
from evmeta.review.reconcile import cohen_kappa
from evmeta.sheets.export import restore_neutralized
from evmeta.sheets.reader import UnreadableInput, column_letter, read_raw

SHEET = "screening"
TITLE_ABSTRACT_CHOICES = ("include", "exclude", "unsure")
TITLE_ABSTRACT_DECISIONS = ("include", "exclude")
FULL_TEXT_CHOICES = ("include", "exclude", "not_retrieved")
FINAL_CHOICES = ("include", "exclude")

#: Standard reasons for excluding a report at full text (PICO for preclinical MSC-EV reviews).
EXCLUSION_REASONS: dict[str, str] = {
    "not_in_vivo": "no in vivo animal experiment (in vitro only, human, or ex vivo)",
    "not_msc_ev": "intervention is not MSC-derived extracellular vesicles (cells, medium, other EVs)",
    "no_control": "no vehicle or untreated control group",
    "no_relevant_outcome": "no outcome of interest, or no usable data for it",
    "wrong_disease_model": "disease model outside the review question",
    "wrong_publication_type": "review, editorial, comment, protocol or conference abstract",
    "duplicate_data": "data published in another included report",
    "retracted": "retracted publication",
    "language": "full text in a language the team cannot read",
    "other": "other reason (explain in notes)",
}
#: Short labels of the reasons, as printed in the PRISMA flow diagram.
REASON_LABELS: dict[str, str] = {
    "not_in_vivo": "Not an in vivo animal study",
    "not_msc_ev": "Not MSC-derived EVs",
    "no_control": "No control group",
    "no_relevant_outcome": "No relevant outcome",
    "wrong_disease_model": "Other disease model",
    "wrong_publication_type": "Not a primary research article",
    "duplicate_data": "Data reported elsewhere",
    "retracted": "Retracted",
    "language": "Language",
    "other": "Other reasons",
}


README_LINES = [
    "evmeta screening log (PRISMA 2020 items 8 and 16a)",
    "",
    "One row per record kept by `evmeta dedupe`; record_id links the row to deduplicated.csv: do not edit it.",
    "1. Title/abstract: two reviewers fill ta_reviewer_1 and ta_reviewer_2 independently (include, exclude,",
    "   unsure); ta_decision is the consensus (include or exclude).",
    "2. Full text, for records included at title/abstract: ft_reviewer_1, ft_reviewer_2, then the consensus",
    "   ft_decision (include, exclude, or not_retrieved when the report could not be obtained).",
    "3. exclusion_reason: required when ft_decision is exclude (sheet exclusion_reasons lists the reasons).",
    "4. final_decision: include when ft_decision is include, else exclude.",
    "Delete a row only to remove a record before screening (e.g. retracted): `evmeta prisma` counts it as",
    "'removed for other reasons' and names it in a note.",
    "Check the log with `evmeta screen-sheet --check screening.xlsx` (errors name sheet, row and column;",
    "agreement of the two reviewers as Cohen's kappa).",
]


@dataclass(frozen=True)
class ScreeningColumn:
    """One column of the screening sheet: ``kind`` is int, text or choice."""

    name: str
    kind: str
    help: str
    choices: tuple[str, ...] = ()
    required: bool = False


COLUMNS = [
    ScreeningColumn("record_id", "int", "Record id from deduplicated.csv (do not edit).", required=True),
    ScreeningColumn("title", "text", "Title as exported."),
    ScreeningColumn("authors", "text", "First author (surname)."),
    ScreeningColumn("year", "int", "Publication year."),
    ScreeningColumn("doi", "text", "DOI."),
    ScreeningColumn("databases", "text", "Export file(s) the record was found in."),
    ScreeningColumn("ta_reviewer_1", "choice", "Title/abstract, reviewer 1.", TITLE_ABSTRACT_CHOICES),
    ScreeningColumn("ta_reviewer_2", "choice", "Title/abstract, reviewer 2.", TITLE_ABSTRACT_CHOICES),
    ScreeningColumn("ta_decision", "choice", "Title/abstract consensus.", TITLE_ABSTRACT_DECISIONS),
    ScreeningColumn("ft_reviewer_1", "choice", "Full text, reviewer 1.", FULL_TEXT_CHOICES),
    ScreeningColumn("ft_reviewer_2", "choice", "Full text, reviewer 2.", FULL_TEXT_CHOICES),
    ScreeningColumn("ft_decision", "choice", "Full-text consensus.", FULL_TEXT_CHOICES),
    ScreeningColumn(
        "exclusion_reason", "choice", "Reason for a full-text exclusion.", tuple(EXCLUSION_REASONS)
    ),
    ScreeningColumn("final_decision", "choice", "include = the report enters extraction.", FINAL_CHOICES),
    ScreeningColumn("notes", "text", "Free text."),
]
COLUMN_BY_NAME = {c.name: c for c in COLUMNS}


# --- writing -----------------------------------------------------------------------------


def screening_rows(deduplicated: str | Path) -> list[dict[str, Any]]:
    """One row per record kept by ``evmeta dedupe`` (in record_id order)."""
    table = read_deduplicated(deduplicated)
    databases = (
        table.groupby("cluster_id")["source_file"].agg(lambda s: "; ".join(sorted(set(s.dropna()) - {""})))
        if "source_file" in table
        else None
    )
    if not table["keep"].any():
        raise EvmetaError(f"{Path(deduplicated).name}: no record has keep = true; there is nothing to screen")
    rows = []
    for record in table[table["keep"]].to_dict("records"):
        rows.append(
            {
                "record_id": int(record["record_id"]),
                "title": _clean(record["title"]),
                "authors": _clean(record["first_author"]),
                "year": None if pd.isna(record["year"]) else int(record["year"]),
                "doi": re.sub(
                    r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", "", _clean(record["doi"]), flags=re.I
                ),
                "databases": "" if databases is None else databases.get(record["cluster_id"], ""),
            }
        )
    return rows


#: Control characters a workbook cannot store (as openpyxl's ILLEGAL_CHARACTERS_RE).
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _clean(value: Any) -> str:
    """Cell text: stripped, with control characters a workbook cannot hold shown as U+FFFD."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return _ILLEGAL.sub("\ufffd", str(value)).strip()


#: Values of ``keep`` read as kept / not kept (any other value is refused, naming its rows).
KEEP_VALUES = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _csv_table(path: Path) -> pd.DataFrame:
    """The CSV as text columns: a regular UTF-8 file within the size limit, not empty."""
    import io

    from evmeta._paths import read_bytes_capped

    try:
        text = read_bytes_capped(path, what="deduplicated CSV").decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvmetaError(
            f"{path.name}: not UTF-8 text (byte {exc.start}); expected the CSV of `evmeta dedupe`"
        ) from None
    if not text.strip():
        raise EvmetaError(f"{path.name} is empty; expected the CSV written by `evmeta dedupe`")
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise EvmetaError(f"{path.name}: not a readable CSV ({str(exc).splitlines()[0][:120]})") from None


def _keep_column(table: pd.DataFrame, name: str) -> pd.Series:
    """``keep`` as booleans; a value that is neither true nor false is refused with its rows."""
    values = table["keep"].str.strip().str.casefold()
    bad = ~values.isin(list(KEEP_VALUES))
    if bad.any():
        rows = [str(i + 2) for i in table.index[bad][:10]]
        examples = sorted(set(table.loc[bad, "keep"]))[:3]
        raise EvmetaError(
            f"{name}: keep must be true or false (as `evmeta dedupe` writes it); row(s) {', '.join(rows)} "
            f"have {', '.join(repr(e) for e in examples)}"
        )
    return values.map(KEEP_VALUES).astype(bool)


def read_deduplicated(path: str | Path) -> pd.DataFrame:
    """Read the CSV written by ``evmeta dedupe`` (record_id, cluster_id, keep, ...)."""
    path = Path(path)
    table = _csv_table(path)
    missing = {"record_id", "cluster_id", "keep", "title"} - set(table.columns)
    if missing:
        raise EvmetaError(
            f"{path.name}: not a file written by `evmeta dedupe` (missing column(s) {', '.join(sorted(missing))})"
        )
    if table.empty:
        raise EvmetaError(f"{path.name} has no records; run `evmeta dedupe` on the search exports again")
    table["keep"] = _keep_column(table, path.name)
    ids = pd.to_numeric(table["record_id"], errors="coerce")
    if ids.isna().any() or (ids % 1 != 0).any():
        row = int(table.index[ids.isna() | (ids % 1 != 0)][0]) + 2
        raise EvmetaError(
            f"{path.name} row {row}: record_id must be a whole number, got {table.loc[row - 2, 'record_id']!r}"
        )
    table["record_id"] = ids.astype(int)
    table["year"] = pd.to_numeric(table["year"], errors="coerce") if "year" in table else None
    table = table.replace({"": None})
    # The export's apostrophe before '=', '+', ... guards the CSV; the workbook cells written
    # from this table are typed as text, so they get the text as it was found.
    for column in table.columns:
        if pd.api.types.is_object_dtype(table[column].dtype) or pd.api.types.is_string_dtype(
            table[column].dtype
        ):
            table[column] = table[column].map(restore_neutralized)
    return table


def write_screening_sheet(deduplicated: str | Path, output: str | Path) -> Path:
    """Write the screening workbook for the records kept in ``deduplicated`` (see module docstring)."""
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    rows = screening_rows(deduplicated)
    book = Workbook()
    sheet = book.active
    sheet.title = SHEET
    sheet.freeze_panes = "B2"
    lists = book.create_sheet("lists")
    for index, column in enumerate(COLUMNS):
        letter = column_letter(index)
        cell = sheet.cell(row=1, column=index + 1, value=column.name)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        cell.comment = Comment(_comment(column), "evmeta")
        sheet.column_dimensions[letter].width = (
            60 if column.name == "title" else max(12, len(column.name) + 3)
        )
        if column.kind == "choice":
            lists.cell(row=1, column=index + 1, value=column.name).font = Font(bold=True)
            for list_row, choice in enumerate(column.choices, start=2):
                lists.cell(row=list_row, column=index + 1, value=choice)
            source = f"lists!${letter}$2:${letter}${len(column.choices) + 1}"
            validation = DataValidation(type="list", formula1=source, allow_blank=True)
            validation.error = f"choose one of: {', '.join(column.choices)}"
            validation.showErrorMessage = True
            sheet.add_data_validation(validation)
            validation.add(f"{letter}2:{letter}{max(len(rows), 1) + 1}")
    for row_index, row in enumerate(rows, start=2):
        for index, column in enumerate(COLUMNS):
            value = row.get(column.name)
            if value not in (None, ""):
                cell = sheet.cell(row=row_index, column=index + 1, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"  # a title starting with '=' stays text
    readme = book.create_sheet("README", 0)
    for line in README_LINES:
        readme.append([line])
    readme.column_dimensions["A"].width = 110
    reasons = book.create_sheet("exclusion_reasons")
    reasons.append(["reason", "meaning"])
    for code, meaning in EXCLUSION_REASONS.items():
        reasons.append([code, meaning])
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    book.save(output)
    return output


def _comment(column: ScreeningColumn) -> str:
    text = column.help
    if column.choices:
        text += " Allowed: " + ", ".join(column.choices) + "."
    return text


# --- reading -----------------------------------------------------------------------------


@dataclass
class Screening:
    """A validated screening log: one row per record, decisions normalized."""

    path: Path
    table: pd.DataFrame

    @property
    def included(self) -> pd.DataFrame:
        """Reports included at full text (they go into the extraction's ``studies`` sheet)."""
        return self.table[self.table["final_decision"] == "include"]


def _choice(text: str, column: ScreeningColumn) -> str | None:
    key = re.sub(r"[\s\-/]+", "_", text.strip().casefold())
    return key if key in column.choices else None


def _coerce(value: Any, column: ScreeningColumn) -> tuple[Any, str | None]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    if column.kind == "int":
        try:
            number = float(value)
        except (TypeError, ValueError):
            return None, f"expected a whole number, got {value!r}"
        if not number.is_integer():
            return None, f"expected a whole number, got {value!r}"
        return int(number), None
    if column.kind == "choice":
        choice = _choice(str(value), column)
        if choice is None:
            return None, f"unknown value {str(value)!r}; allowed: {', '.join(column.choices)}"
        return choice, None
    return (str(int(value)) if isinstance(value, float) and value.is_integer() else str(value).strip()), None


def read_screening(path: str | Path) -> Screening:
    """Read and validate a screening log (``.xlsx``, ``.ods``, a CSV file or a CSV folder).

    Raises
    ------
    ScreeningError
        Listing every problem as ``screening!I14 ta_decision: ...``.
    """
    path = Path(path)
    try:
        raw = read_raw(path)
    except UnreadableInput as exc:
        raise ScreeningError([Problem(path.name, None, None, None, str(exc))]) from None
    sheet = raw.sheets.get(SHEET) or (next(iter(raw.sheets.values())) if path.suffix == ".csv" else None)
    if sheet is None:
        raise ScreeningError([Problem(path.name, None, None, None, f"no sheet named {SHEET!r}")])
    problems: list[Problem] = []
    positions = {h.strip().casefold(): i for i, h in enumerate(sheet.header) if h}
    for column in COLUMNS:
        if column.name not in positions and column.name not in {"notes", "databases"}:
            problems.append(Problem(sheet.name, 1, column.name, None, "column is missing"))
    if problems:
        raise ScreeningError(problems)
    records = []
    for excel_row, cells in sheet.rows:
        record: dict[str, Any] = {"_row": excel_row}
        for column in COLUMNS:
            index = positions.get(column.name)
            value = cells[index] if index is not None and index < len(cells) else None
            if value is not None and value.kind in {"formula", "error"}:
                problems.append(
                    _problem(
                        sheet.name, excel_row, column, index, "is a formula or error value; type the value"
                    )
                )
                record[column.name] = None
                continue
            coerced, error = _coerce(None if value is None else value.value, column)
            if error:
                problems.append(_problem(sheet.name, excel_row, column, index, error))
            record[column.name] = coerced
        problems.extend(_row_rules(sheet.name, excel_row, record, positions))
        records.append(record)
    table = pd.DataFrame(records, columns=["_row", *COLUMN_BY_NAME])
    problems.extend(_duplicate_ids(sheet.name, table, positions))
    if any(p.severity == "error" for p in problems):
        raise ScreeningError(problems)
    return Screening(path, table)


def _problem(sheet: str, row: int, column: ScreeningColumn, index: int | None, message: str) -> Problem:
    letter = column_letter(index) if index is not None else None
    return Problem(sheet, row, column.name, None, message, "error", letter)


def _row_rules(sheet: str, row: int, record: dict[str, Any], positions: dict[str, int]) -> list[Problem]:
    """Decisions that contradict each other on one row (the PRISMA flow must be a tree)."""
    out = []

    def add(name: str, message: str) -> None:
        out.append(_problem(sheet, row, COLUMN_BY_NAME[name], positions.get(name), message))

    ta, ft, final = record["ta_decision"], record["ft_decision"], record["final_decision"]
    if record["record_id"] is None:
        add("record_id", "every row needs the record_id from deduplicated.csv")
    if ta is None:
        add("ta_decision", "title/abstract consensus is empty: screen this record (include or exclude)")
    elif ta == "exclude" and ft is not None:
        add("ft_decision", f"has {ft!r} but the record was excluded at title/abstract")
    elif ta == "include" and ft is None:
        add("ft_decision", "empty: a record included at title/abstract needs a full-text decision")
    if ft == "exclude" and record["exclusion_reason"] is None:
        add("exclusion_reason", "a report excluded at full text needs a reason from the list")
    if ft != "exclude" and record["exclusion_reason"] is not None:
        add("exclusion_reason", "a reason is given but the report was not excluded at full text")
    expected = None if ta is None else ("include" if ft == "include" else "exclude")
    if expected is not None and final != expected:
        add("final_decision", f"expected {expected!r} from ta_decision/ft_decision, got {final!r}")
    return out


def _duplicate_ids(sheet: str, table: pd.DataFrame, positions: dict[str, int]) -> list[Problem]:
    ids = table["record_id"].dropna()
    repeated = table[table["record_id"].isin(ids[ids.duplicated()])]
    return [
        _problem(
            sheet,
            int(r["_row"]),
            COLUMN_BY_NAME["record_id"],
            positions.get("record_id"),
            f"record_id {int(r['record_id'])} appears twice",
        )
        for r in repeated.to_dict("records")
    ]


# --- agreement -----------------------------------------------------------------------------


def screening_agreement(screening: Screening) -> pd.DataFrame:
    """Cohen's kappa and percent agreement of the two screeners, per stage.

    Only rows where both reviewers decided are compared (full text: the reports both read).
    """
    rows = []
    for stage, first, second in [
        ("title_abstract", "ta_reviewer_1", "ta_reviewer_2"),
        ("full_text", "ft_reviewer_1", "ft_reviewer_2"),
    ]:
        both = screening.table.dropna(subset=[first, second])
        a, b = list(both[first]), list(both[second])
        agree = sum(x == y for x, y in zip(a, b, strict=True))
        rows.append(
            {
                "stage": stage,
                "n_compared": len(a),
                "n_agree": agree,
                "percent_agreement": 100 * agree / len(a) if a else float("nan"),
                "kappa": cohen_kappa(a, b),
            }
        )
    return pd.DataFrame(rows)


def included_study_rows(screening: Screening) -> list[dict[str, Any]]:
    """``studies`` rows for the reports included at full text, each carrying its record_id.

    ``study_id`` is proposed as SURNAME + year (a letter added on clashes); edit it freely.
    """
    rows, used = [], set()
    for record in screening.included.to_dict("records"):
        base = re.sub(r"[^A-Z]", "", str(record["authors"] or "STUDY").upper())[:20] or "STUDY"
        base += str(record["year"] or "")
        study_id, suffix = base, 0
        while study_id in used:
            suffix += 1
            study_id = base + chr(ord("a") + suffix - 1)
        used.add(study_id)
        rows.append(
            {
                "study_id": study_id,
                "first_author": (record["authors"] or "").title() or None,
                "year": record["year"],
                "title": record["title"],
                "doi": record["doi"],
                "record_id": str(int(record["record_id"])),
            }
        )
    return rows


def check_against_deduplicated(screening: Screening, deduplicated: pd.DataFrame) -> list[Problem]:
    """Screening rows whose record_id is not a kept record of ``deduplicated``."""
    kept = set(deduplicated.loc[deduplicated["keep"], "record_id"].astype(int))
    everything = set(deduplicated["record_id"].astype(int))
    out = []
    for record in screening.table.to_dict("records"):
        rid = int(record["record_id"])
        if rid not in kept:
            why = "is a duplicate removed by dedupe" if rid in everything else "is not in deduplicated.csv"
            out.append(
                Problem(SHEET, int(record["_row"]), "record_id", rid, f"record_id {rid} {why}", "error", "A")
            )
    return out


def raise_if_errors(problems: list[Problem]) -> None:
    """Raise a ``ScreeningError`` when ``problems`` contains an error."""
    if any(p.severity == "error" for p in problems):
        raise ScreeningError(problems)


__all__ = [
    "COLUMNS",
    "EXCLUSION_REASONS",
    "Screening",
    "ScreeningError",
    "included_study_rows",
    "read_screening",
    "screening_agreement",
    "write_screening_sheet",
]
