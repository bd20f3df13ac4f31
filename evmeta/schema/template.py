"""Write the extraction template: an Excel workbook with dropdowns, or CSV files.

The workbook has a ``README`` sheet, one sheet per entity with a frozen, commented header
row, dropdown validation for vocabulary columns (fed from a ``vocabulary`` sheet) and
numeric validation for numeric columns.
"""

from __future__ import annotations

import csv
from pathlib import Path

from evmeta.schema.columns import SHEET_DESCRIPTIONS, SHEETS, Column
from evmeta.schema.vocabulary import isolation_steps, vocabulary
from evmeta.sheets.export import check_new_output
from evmeta.sheets.reader import column_letter

#: Rows of data validation written per sheet (Excel applies it to empty rows too).
TEMPLATE_ROWS = 2000

README_LINES = [
    "evmeta extraction workbook",
    "",
    "One sheet per entity; one row per item; every row has a stable id. Columns are described in the",
    "comment on each header cell (hover over it). Dropdowns offer the allowed values; synonyms and close",
    "spellings are accepted and reported as notes by `evmeta validate`.",
    "",
    "Rules:",
    "- Type values, never formulas: evmeta does not evaluate formulas and reports them as errors.",
    "- Leave a cell empty (or type NA) when the paper does not report it.",
    "- Numbers: a point as decimal separator (a comma in a CSV saved with ';'); 1.5e9 or 1.5 x 10^9 are fine.",
    "- Type mean and sd (or sem) in their own cells, not '27.5 ± 7.0'; the time point's unit goes in timepoint_unit.",
    "- An experiment with several vehicle controls (one per route): name each EV arm's control in arms.control_arm_id.",
    "- Chain isolation steps with '+', in order: TFF+SEC, UC+DG.",
    "- Row numbers in messages (outcomes!H14) are the row numbers you see in Excel.",
    "",
    "Sheets:",
]


def _comment(column: Column) -> str:
    parts = [column.help]
    if column.unit:
        parts.append(f"Unit: {column.unit}.")
    if column.required:
        parts.append("Required.")
    if column.references:
        parts.append(f"Must match {column.references}.")
    if column.vocabulary:
        values = vocabulary(column.vocabulary).values
        parts.append("Allowed: " + ", ".join(values[:25]) + (" ..." if len(values) > 25 else ""))
    if column.kind == "isolation":
        parts.append("Steps: " + ", ".join(isolation_steps()))
    bounds = []
    if column.positive:
        bounds.append("> 0")
    if column.minimum is not None:
        bounds.append(f">= {column.minimum:g}")
    if column.maximum is not None:
        bounds.append(f"<= {column.maximum:g}")
    if bounds:
        parts.append("Range: " + ", ".join(bounds) + ".")
    return " ".join(parts)


def write_template(
    path: str | Path,
    *,
    csv_dir: bool = False,
    data: dict[str, list[dict]] | None = None,
    readme: list[str] | None = None,
    overwrite: bool = False,
    extra_columns: dict[str, dict[str, str]] | None = None,
) -> Path:
    """Write an empty extraction template.

    Parameters
    ----------
    path : str or Path
        ``.xlsx`` file to write, or (with ``csv_dir=True``) a folder for one CSV per sheet.
    csv_dir : bool
        Write CSV files instead of a workbook.
    data : dict of sheet name -> list of row dicts, optional
        Rows to fill in (used for example workbooks and reconciliation output).
    readme : list of str, optional
        Lines added at the top of the README sheet.
    overwrite : bool
        Replace an existing workbook (or existing CSV files in the folder). By default an
        existing file is refused, so that a filled workbook is never lost by mistake.
    extra_columns : dict of sheet name -> {column: comment}, optional
        Columns written after a sheet's schema columns (``import-wide`` moderators on the
        arms sheet), with a header comment; the reader keeps them as extra columns.

    Returns
    -------
    Path
        What was written.

    Raises
    ------
    OutputExistsError
        The file (or, with ``csv_dir``, one of the CSV files) exists and ``overwrite`` is
        False; nothing is written.
    PathError
        The path is a folder (or, with ``csv_dir``, a file) or cannot be written.

    Examples
    --------
    >>> import tempfile, pathlib, evmeta as em
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> em.write_template(folder / "my_review.xlsx").name
    'my_review.xlsx'
    """
    path = Path(path)
    if csv_dir:
        check_new_output(path, overwrite=overwrite, folder=True)
        for sheet in SHEETS:
            check_new_output(path / f"{sheet}.csv", overwrite=overwrite)
        path.mkdir(parents=True, exist_ok=True)
        for sheet, columns in SHEETS.items():
            names = [c.name for c in columns] + list((extra_columns or {}).get(sheet, {}))
            with (path / f"{sheet}.csv").open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=names, extrasaction="ignore")
                writer.writeheader()
                for row in (data or {}).get(sheet, []):
                    writer.writerow({k: _safe(v) for k, v in row.items()})
        return path
    check_new_output(path, overwrite=overwrite)
    return _write_xlsx(path, data or {}, readme or [], extra_columns or {})


def _safe(value):
    """Text that Excel would run as a formula is stored with a leading apostrophe."""
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@")) and not _is_number(value):
        return "'" + value
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _write_xlsx(
    path: Path, data: dict[str, list[dict]], readme_extra: list[str], extra_columns: dict[str, dict[str, str]]
) -> Path:
    from openpyxl import Workbook
    from openpyxl.comments import Comment
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    readme = book.active
    readme.title = "README"
    lines = [
        *readme_extra,
        *([""] if readme_extra else []),
        *README_LINES,
        *(f"- {s}: one row per {d}" for s, d in SHEET_DESCRIPTIONS.items()),
        "- vocabulary: allowed values for the dropdowns (written by evmeta; do not edit)",
    ]
    for row, line in enumerate(lines, start=1):
        readme.cell(row=row, column=1, value=line)
    readme["A1"].font = Font(bold=True, size=14)
    readme.column_dimensions["A"].width = 110

    vocab_sheet = book.create_sheet("vocabulary")
    vocab_ranges: dict[str, str] = {}
    names = sorted({c.vocabulary for cols in SHEETS.values() for c in cols if c.vocabulary})
    for index, name in enumerate(names):
        letter = column_letter(index)
        values = vocabulary(name).values
        vocab_sheet.cell(row=1, column=index + 1, value=name).font = Font(bold=True)
        for row, value in enumerate(values, start=2):
            vocab_sheet.cell(row=row, column=index + 1, value=value)
        vocab_ranges[name] = f"vocabulary!${letter}$2:${letter}${len(values) + 1}"
        vocab_sheet.column_dimensions[letter].width = max(14, len(name) + 2)

    header_fill = PatternFill("solid", fgColor="DDEBF7")
    required_fill = PatternFill("solid", fgColor="F8CBAD")
    for sheet_name, columns in SHEETS.items():
        sheet = book.create_sheet(sheet_name, index=len(book.sheetnames) - 1)
        sheet.freeze_panes = "B2"
        for index, column in enumerate(columns):
            letter = column_letter(index)
            cell = sheet.cell(row=1, column=index + 1, value=column.name)
            cell.font = Font(bold=True)
            cell.fill = required_fill if column.required else header_fill
            cell.alignment = Alignment(vertical="top")
            comment = Comment(_comment(column), "evmeta")
            comment.width, comment.height = 320, 160
            cell.comment = comment
            sheet.column_dimensions[letter].width = max(12, min(30, len(column.name) + 4))
            target = f"{letter}2:{letter}{max(TEMPLATE_ROWS, len(data.get(sheet_name, []))) + 1}"
            validation = _validation(column, vocab_ranges, DataValidation)
            if validation is not None:
                sheet.add_data_validation(validation)
                validation.add(target)
        for row_index, record in enumerate(data.get(sheet_name, []), start=2):
            for index, column in enumerate(columns):
                typed = record.get(column.name)
                if typed is not None:
                    # data_type "s" keeps text such as "=x" from being stored as a formula.
                    cell = sheet.cell(row=row_index, column=index + 1, value=typed)
                    if isinstance(typed, str):
                        cell.data_type = "s"
        _write_extra_columns(sheet, len(columns), extra_columns.get(sheet_name, {}), data.get(sheet_name, []))
    path.parent.mkdir(parents=True, exist_ok=True)
    book.save(path)
    return path


def _write_extra_columns(sheet, start: int, extra: dict[str, str], rows: list[dict]) -> None:
    """Extra columns after the schema's: header (with its comment) and values."""
    from openpyxl.comments import Comment
    from openpyxl.styles import Font

    for offset, (name, comment) in enumerate(extra.items(), start=start + 1):
        header = sheet.cell(row=1, column=offset, value=name)
        header.font = Font(bold=True)
        header.comment = Comment(comment, "evmeta")
        sheet.column_dimensions[column_letter(offset - 1)].width = max(12, min(30, len(name) + 4))
        for row_index, row in enumerate(rows, start=2):
            value = row.get(name)
            if value is not None:
                cell = sheet.cell(row=row_index, column=offset, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"


def _validation(column: Column, vocab_ranges: dict[str, str], DataValidation):
    if column.vocabulary:
        dv = DataValidation(type="list", formula1=vocab_ranges[column.vocabulary], allow_blank=True)
        # Synonyms are accepted too, so an unlisted value warns instead of blocking.
        dv.errorStyle = "warning"
        dv.error = f"Not in the {column.vocabulary} list; evmeta will try to match it and report a note."
        dv.showErrorMessage = True
        return dv
    if column.kind in {"int", "float", "year"}:
        kind = "whole" if column.kind in {"int", "year"} else "decimal"
        low = column.minimum if column.minimum is not None else (0 if column.positive else -1e18)
        high = column.maximum if column.maximum is not None else 1e18
        dv = DataValidation(
            type=kind, operator="between", formula1=f"{low:g}", formula2=f"{high:g}", allow_blank=True
        )
        dv.error = _comment(column)
        dv.errorTitle = column.name
        dv.showErrorMessage = True
        return dv
    return None
