"""Dual-extraction reconciliation: compare two reviewers' workbooks, then apply decisions.

``reconcile(a, b)`` aligns rows sheet by sheet (by id, then by a fuzzy match of a row
label where ids differ), lists every differing cell with both values (numbers compared
with a tolerance; values compared after vocabulary normalization, so "ExoQuick" and
"precipitation" agree), and measures agreement per field and per sheet (percent
agreement; Cohen's kappa for categorical fields). ``write_reconciliation`` writes a
workbook with a ``discrepancies`` sheet (a ``decision`` column for the adjudicator) and a
consensus workbook in which agreed cells are filled and disputed cells are blank and
highlighted. ``apply_decisions`` builds the final workbook from the adjudicated decisions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from evmeta._paths import PathError
from evmeta.errors import ExtractionError
from evmeta.review._rejected import dict_key as _dict_key
from evmeta.review._rejected import invalid_discrepancies as _invalid_discrepancies
from evmeta.review._rejected import invalid_rows as _invalid_rows
from evmeta.schema.columns import ID_COLUMNS, SHEETS, column_map
from evmeta.schema.validation.validate import validate_extraction
from evmeta.sheets.reader import UnreadableInput

#: Columns that legitimately differ between reviewers and are not compared.
IGNORED_COLUMNS = {"reviewer", "notes"}
LABEL_THRESHOLD = 90.0
HIGHLIGHT = "FFEB84"
#: Columns of the discrepancy table (the reviewers' decision column is added after them).
DISCREPANCY_COLUMNS = ["sheet", "key", "column", "value_a", "value_b", "row_a", "row_b", "kind"]


def _key_columns(sheet: str) -> list[str]:
    return ["study_id", "experiment_id"] if sheet == "risk_of_bias" else [ID_COLUMNS[sheet]]


def _key(row: pd.Series, sheet: str) -> str:
    return "/".join("" if pd.isna(row[c]) else str(row[c]) for c in _key_columns(sheet))


def _label(row: pd.Series, sheet: str) -> str:
    columns = [
        c.name for c in SHEETS[sheet] if c.name not in IGNORED_COLUMNS and c.name not in _key_columns(sheet)
    ]
    return " ".join(str(row[c]) for c in columns if c in row.index and pd.notna(row[c]))


def _same(a: Any, b: Any, rtol: float, atol: float) -> bool:
    a_missing = a is None or (isinstance(a, float) and np.isnan(a))
    b_missing = b is None or (isinstance(b, float) and np.isnan(b))
    if a_missing or b_missing:
        return a_missing and b_missing
    if (
        isinstance(a, (int, float, np.number))
        and isinstance(b, (int, float, np.number))
        and not isinstance(a, bool)
    ):
        return bool(np.isclose(float(a), float(b), rtol=rtol, atol=atol))
    return str(a).strip() == str(b).strip()


#: Rows of A matched against B per block of the vectorized label matcher (memory bound).
PAIRING_CHUNK = 1_000


def _pair_by_label(
    only_a: list[str], only_b: list[str], keys_a: dict, keys_b: dict, sheet: str
) -> list[tuple[str, str]]:
    """Pairs (key A, key B) of rows whose labels match at LABEL_THRESHOLD or better.

    Each row of A, in order, takes the best-scoring row of B not taken yet. Scores come
    from rapidfuzz ``cdist`` (vectorized, in chunks), so 2,000 renamed rows take about a
    second instead of minutes of pairwise Python calls.
    """
    if not only_a or not only_b:
        return []
    labels_a = [_label(keys_a[k], sheet) for k in only_a]
    labels_b = [_label(keys_b[k], sheet) for k in only_b]
    taken = np.zeros(len(only_b), dtype=bool)
    pairs = []
    for start in range(0, len(only_a), PAIRING_CHUNK):
        scores = process.cdist(
            labels_a[start : start + PAIRING_CHUNK],
            labels_b,
            scorer=fuzz.ratio,
            score_cutoff=LABEL_THRESHOLD,
            dtype=np.float32,
            workers=1,
        )
        for offset, row in enumerate(scores):
            row = np.where(taken, 0.0, row)
            best = int(np.argmax(row))
            if row[best] >= LABEL_THRESHOLD:
                taken[best] = True
                pairs.append((only_a[start + offset], only_b[best]))
    return pairs


def cohen_kappa(a: list[Any], b: list[Any]) -> float:
    """Cohen's kappa of two raters' categories (a blank is a category of its own)."""
    a = ["(blank)" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in a]
    b = ["(blank)" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in b]
    n = len(a)
    if n == 0:
        return float("nan")
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    categories = set(a) | set(b)
    expected = sum((a.count(c) / n) * (b.count(c) / n) for c in categories)
    if expected == 1:
        return 1.0 if observed == 1 else float("nan")
    return (observed - expected) / (1 - expected)


@dataclass
class Reconciliation:
    """Result of comparing two extractions."""

    a_path: Path
    b_path: Path
    discrepancies: pd.DataFrame
    fields: pd.DataFrame
    sheets: pd.DataFrame
    consensus: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    disputed: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [f"{len(self.discrepancies)} discrepanc{'y' if len(self.discrepancies) == 1 else 'ies'}"]
        invalid = self.discrepancies["kind"].astype(str).str.startswith("invalid")
        if invalid.any():
            lines.append(
                f"  {int(invalid.sum())} of them are cells or rows the validator rejected "
                "(kept in the consensus workbook, highlighted, for correction)"
            )
        for row in self.sheets.itertuples():
            lines.append(
                f"  {row.sheet:<14} {row.percent_agreement:6.2f}% of {row.cells_compared} cells agree"
            )
        return "\n".join(lines)


def _read(path: Path):
    extraction, problems = validate_extraction(path)
    if extraction is None:
        raise ExtractionError(problems, fatal=True)
    return extraction


def reconcile(
    a_path: str | Path, b_path: str | Path, *, rtol: float = 1e-6, atol: float = 1e-9
) -> Reconciliation:
    """Compare two reviewers' extractions of the same studies (see the module docstring)."""
    a_path, b_path = Path(a_path), Path(b_path)
    a, b = _read(a_path), _read(b_path)
    invalid_a, invalid_b = _invalid_rows(a_path, a), _invalid_rows(b_path, b)
    discrepancies: list[dict[str, Any]] = []
    field_rows: list[dict[str, Any]] = []
    sheet_rows: list[dict[str, Any]] = []
    consensus: dict[str, list[dict[str, Any]]] = {}
    disputed: dict[str, set[tuple[str, str]]] = {}
    for sheet in SHEETS:
        found = _SheetComparison(sheet, discrepancies)
        pairs, unpaired = found.align(a.sheets[sheet], b.sheets[sheet])
        columns = [c for c in column_map(sheet).values() if c.name not in IGNORED_COLUMNS]
        rows_out = found.compare(pairs, columns, rtol, atol) + found.unpaired(unpaired)
        fields = _field_agreement(sheet, pairs, columns, rtol, atol)
        field_rows.extend(fields)
        sheet_rows.append(_sheet_agreement(sheet, a.sheets[sheet], b.sheets[sheet], len(pairs), fields))
        found.keep_invalid(rows_out, invalid_a.get(sheet, {}), invalid_b.get(sheet, {}))
        consensus[sheet], disputed[sheet] = rows_out, found.disputes
    frame = pd.DataFrame(discrepancies, columns=DISCREPANCY_COLUMNS)
    frame["decision"] = ""
    return Reconciliation(
        a_path, b_path, frame, pd.DataFrame(field_rows), pd.DataFrame(sheet_rows), consensus, disputed
    )


def _discrepancy(sheet: str, key: str, column: str | None, values: tuple, rows: tuple, kind: str) -> dict:
    return {
        "sheet": sheet,
        "key": key,
        "column": column,
        "value_a": values[0],
        "value_b": values[1],
        "row_a": rows[0],
        "row_b": rows[1],
        "kind": kind,
    }


class _SheetComparison:
    """One sheet of two workbooks: rows aligned by key, cells compared; every difference is
    appended to the shared ``discrepancies`` list and its (key, column) to ``disputes``."""

    def __init__(self, sheet: str, discrepancies: list[dict[str, Any]]) -> None:
        self.sheet, self.discrepancies = sheet, discrepancies
        self.disputes: set[tuple[str, str]] = set()

    def align(self, frame_a: pd.DataFrame, frame_b: pd.DataFrame):
        """Pairs (key, row_a, row_b) and the rows of each side without a partner."""
        sheet = self.sheet
        keys_a = {_key(r, sheet): r for _, r in frame_a.iterrows()}
        keys_b = {_key(r, sheet): r for _, r in frame_b.iterrows()}
        pairs = [(k, keys_a[k], keys_b[k]) for k in keys_a if k in keys_b]
        only_a = [k for k in keys_a if k not in keys_b]
        only_b = [k for k in keys_b if k not in keys_a]
        # Rows whose ids differ: pair them by a fuzzy match of their content.
        for key_a, key_b in _pair_by_label(only_a, only_b, keys_a, keys_b, sheet):
            pairs.append((key_a, keys_a[key_a], keys_b[key_b]))
            rows = (keys_a[key_a]["_row"], keys_b[key_b]["_row"])
            self.discrepancies.append(
                _discrepancy(sheet, key_a, _key_columns(sheet)[0], (key_a, key_b), rows, "id differs")
            )
            only_a.remove(key_a)
            only_b.remove(key_b)
        return pairs, ([(k, keys_a[k]) for k in only_a], [(k, keys_b[k]) for k in only_b])

    def compare(self, pairs, columns, rtol: float, atol: float) -> list[dict[str, Any]]:
        """Consensus rows of the aligned pairs: agreed values, None where they differ."""
        rows_out = []
        for key, row_a, row_b in pairs:
            out = {}
            for column in columns:
                va, vb = row_a.get(column.name), row_b.get(column.name)
                same = _same(va, vb, rtol, atol)
                out[column.name] = None if not same else (None if pd.isna(va) else va)
                if not same:
                    self.discrepancies.append(
                        _discrepancy(self.sheet, key, column.name, (va, vb), (row_a["_row"], row_b["_row"]), "value")
                    )
                    self.disputes.add((key, column.name))
            for column in IGNORED_COLUMNS & set(column_map(self.sheet)):
                out[column] = row_a.get(column)
            for name in _key_columns(self.sheet):
                out[name] = row_a[name]
            rows_out.append(out)
        return rows_out

    def unpaired(self, unpaired) -> list[dict[str, Any]]:
        """Rows only one reviewer has: kept as typed, each a discrepancy."""
        rows_out = []
        for side, rows in zip("AB", unpaired, strict=True):
            for key, row in rows:
                rows_out.append({c: row.get(c) for c in column_map(self.sheet)})
                values = ("row present", None) if side == "A" else (None, "row present")
                where = (row["_row"], None) if side == "A" else (None, row["_row"])
                self.discrepancies.append(_discrepancy(self.sheet, key, None, values, where, f"row only in {side}"))
                self.disputes.add((key, "*"))
        return rows_out

    def keep_invalid(self, rows_out: list[dict[str, Any]], invalid_a: dict, invalid_b: dict) -> None:
        """Rows a validator rejected (in either workbook) stay in the consensus, as typed."""
        present = {_dict_key(r, self.sheet) for r in rows_out}
        for found in _invalid_discrepancies(self.sheet, invalid_a, invalid_b):
            self.discrepancies.append(found)
            self.disputes.add((found["key"], found["column"] or "*"))
            if found["key"] not in present:
                typed = invalid_a.get(found["key"]) or invalid_b[found["key"]]
                rows_out.append({c: typed.get(c) for c in column_map(self.sheet)})
                present.add(found["key"])


def _field_agreement(sheet: str, pairs, columns, rtol: float, atol: float) -> list[dict[str, Any]]:
    """Agreement per column of the aligned pairs, with Cohen's kappa for categorical columns."""
    rows = []
    for column in columns:
        values_a = [p[1].get(column.name) for p in pairs]
        values_b = [p[2].get(column.name) for p in pairs]
        agree = sum(_same(x, y, rtol, atol) for x, y in zip(values_a, values_b, strict=True))
        categorical = column.kind in {"vocab", "isolation"}
        rows.append(
            {
                "sheet": sheet,
                "column": column.name,
                "n": len(pairs),
                "agree": agree,
                "percent_agreement": 100 * agree / len(pairs) if pairs else np.nan,
                "kappa": cohen_kappa(values_a, values_b) if categorical and pairs else np.nan,
            }
        )
    return rows


def _sheet_agreement(sheet: str, frame_a, frame_b, aligned: int, fields: list[dict[str, Any]]) -> dict:
    compared = sum(f["n"] for f in fields)
    agreed = sum(f["agree"] for f in fields)
    return {
        "sheet": sheet,
        "rows_a": len(frame_a),
        "rows_b": len(frame_b),
        "rows_aligned": aligned,
        "cells_compared": compared,
        "cells_agree": agreed,
        "percent_agreement": 100 * agreed / compared if compared else np.nan,
    }


def _sha(path: Path) -> str:
    from evmeta.sheets.reader import file_sha256

    return file_sha256(path) if path.exists() else hashlib.sha256(b"").hexdigest()


def write_reconciliation(result: Reconciliation, output: str | Path) -> tuple[Path, Path]:
    """Write ``output`` (discrepancies, agreement, sources) and ``<output>.consensus.xlsx``."""
    import openpyxl
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    from evmeta.schema.template import write_template

    output = Path(output)
    consensus_path = output.with_name(output.stem + ".consensus.xlsx")
    write_template(
        consensus_path,
        overwrite=True,  # as before write_template refused existing files; callers check the path
        data=result.consensus,
        readme=[
            "CONSENSUS of two extractions: agreed cells are filled; disputed cells are blank and highlighted.",
            f"A: {result.a_path.name}   B: {result.b_path.name}   decisions: {output.name} (sheet 'discrepancies').",
        ],
    )
    book = openpyxl.load_workbook(consensus_path)
    fill = PatternFill("solid", fgColor=HIGHLIGHT)
    values = {(d.sheet, d.key, d.column): (d.value_a, d.value_b) for d in result.discrepancies.itertuples()}
    for sheet, cells in result.disputed.items():
        ws = book[sheet]
        headers = {c.value: c.column for c in ws[1]}
        key_columns = [headers[c] for c in _key_columns(sheet)]
        rows = {
            "/".join("" if ws.cell(r, c).value is None else str(ws.cell(r, c).value) for c in key_columns): r
            for r in range(2, ws.max_row + 1)
        }
        for key, column in cells:
            row = rows.get(key)
            if row is None:
                continue
            targets = headers.values() if column == "*" else [headers[column]]
            for target in targets:
                cell = ws.cell(row, target)
                cell.fill = fill
                if column != "*":
                    value_a, value_b = values.get((sheet, key, column), (None, None))
                    cell.comment = Comment(f"A: {value_a}\nB: {value_b}", "evmeta reconcile")
    book.save(consensus_path)

    out = openpyxl.Workbook()
    ws = out.active
    ws.title = "discrepancies"
    table = result.discrepancies.astype(object).where(result.discrepancies.notna(), None)
    ws.append(list(table.columns))
    for values_row in table.itertuples(index=False):
        ws.append([None if (isinstance(v, float) and np.isnan(v)) else v for v in values_row])
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str):
                # Stored as text, never as a formula: no neutralizing apostrophe to leak into
                # the values apply_decisions copies into the final workbook.
                cell.data_type = "s"
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    decision_column = openpyxl.utils.get_column_letter(list(table.columns).index("decision") + 1)
    validation = DataValidation(
        type="list", formula1='"a,b,keep,drop"', allow_blank=True, errorStyle="information"
    )
    validation.prompt = "a = take reviewer A's value, b = reviewer B's; keep/drop for rows found in one workbook; or type the value"
    ws.add_data_validation(validation)
    validation.add(f"{decision_column}2:{decision_column}{max(2, len(table) + 1)}")
    for name, frame in [("agreement_fields", result.fields), ("agreement_sheets", result.sheets)]:
        sheet = out.create_sheet(name)
        sheet.append(list(frame.columns))
        for values_row in frame.itertuples(index=False):
            sheet.append([None if (isinstance(v, float) and np.isnan(v)) else v for v in values_row])
    sources = out.create_sheet("sources")
    for item in [
        ("a", str(result.a_path), _sha(result.a_path)),
        ("b", str(result.b_path), _sha(result.b_path)),
        ("consensus", consensus_path.name, _sha(consensus_path)),
    ]:
        sources.append(list(item))
    out.save(output)
    return output, consensus_path


def _parse_decision(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() else number


def _open_reconciliation(path: Path) -> Any:
    import openpyxl

    from evmeta.sheets.reader import _check_size, _check_zip

    _check_size(path)
    _check_zip(path)
    try:
        book = openpyxl.load_workbook(path, data_only=False)
    except Exception as exc:  # openpyxl raises many types for corrupt files
        raise UnreadableInput(
            f"{path.name} could not be opened as a reconciliation workbook: {exc}"
        ) from None
    for name in ("sources", "discrepancies"):
        if name not in book.sheetnames:
            raise UnreadableInput(
                f"{path.name} has no sheet {name!r}; expected a workbook written by evmeta reconcile"
            )
    return book


def _consensus_path(reconciliation: Path, book: Any) -> Path:
    """The consensus workbook named in ``sources``, which must sit beside the reconciliation file.

    The name in the workbook is data a reviewer can edit: it is resolved relative to the
    reconciliation file's folder and anything outside that folder is refused.
    """
    from evmeta._paths import is_within, require_regular_file

    sources = {row[0].value: row[1].value for row in book["sources"].iter_rows() if len(row) >= 2}
    name = sources.get("consensus")
    if not isinstance(name, str) or not name.strip():
        raise UnreadableInput(f"{reconciliation.name}: sheet 'sources' does not name the consensus workbook")
    folder = reconciliation.resolve().parent
    candidate = folder / name
    if Path(name).is_absolute() or not is_within(candidate, folder):
        raise UnreadableInput(
            f"{reconciliation.name}: sources names the consensus workbook {name!r}, which is outside "
            f"{folder}; only a workbook beside the reconciliation file is read"
        )
    try:
        require_regular_file(candidate, what="consensus workbook")
    except PathError as exc:
        raise UnreadableInput(str(exc)) from None
    return candidate


def apply_decisions(reconciliation: str | Path, output: str | Path | None = None) -> Path:
    """Build the final workbook from the consensus workbook and the adjudicated decisions.

    ``decision``: ``a`` or ``b`` (take that reviewer's value), any other text (the value to
    use), ``keep`` or ``drop`` for rows found in one workbook only. Raises ValueError listing
    every discrepancy without a decision.
    """
    import openpyxl

    from evmeta.schema.template import write_template

    reconciliation = Path(reconciliation)
    book = _open_reconciliation(reconciliation)
    consensus_path = _consensus_path(reconciliation, book)
    sheet = book["discrepancies"]
    header = [c.value for c in sheet[1]]
    missing = {"sheet", "key", "column", "value_a", "value_b", "kind", "decision"} - set(header)
    if missing:
        raise UnreadableInput(
            f"{reconciliation.name}: sheet 'discrepancies' lacks the column(s) {', '.join(sorted(missing))}"
        )
    records = [
        dict(zip(header, [c.value for c in row], strict=False))
        for row in sheet.iter_rows(min_row=2)
        if any(c.value is not None for c in row)
    ]
    undecided = [r for r in records if not str(r.get("decision") or "").strip()]
    if undecided:
        where = ", ".join(
            f"discrepancies!{i + 2} ({r['sheet']} {r['key']} {r['column'] or 'row'})"
            for i, r in enumerate(records)
            if r in undecided
        )
        raise UnreadableInput(
            f"{len(undecided)} discrepanc{'y has' if len(undecided) == 1 else 'ies have'} no decision: {where}"
        )
    consensus = openpyxl.load_workbook(consensus_path)
    data: dict[str, list[dict[str, Any]]] = {}
    for name in SHEETS:
        ws = consensus[name]
        headers = [c.value for c in ws[1]]
        data[name] = [
            dict(zip(headers, [c.value for c in row], strict=True))
            for row in ws.iter_rows(min_row=2)
            if any(c.value is not None for c in row)
        ]
    for number, record in enumerate(records, start=2):
        if record["sheet"] not in data:
            raise UnreadableInput(f"discrepancies!{number}: unknown sheet {record['sheet']!r}")
        rows = data[record["sheet"]]
        keys = _key_columns(record["sheet"])
        match = [
            r
            for r in rows
            if "/".join("" if r.get(c) is None else str(r.get(c)) for c in keys) == str(record["key"])
        ]
        decision = str(record["decision"]).strip()
        kind = str(record["kind"] or "")
        if kind in {"row only in A", "row only in B"} or (
            kind.startswith("invalid") and not record["column"]
        ):
            if decision.lower() == "drop":
                for r in match:
                    rows.remove(r)
            continue
        if kind == "id differs":
            if decision.lower() == "b":
                for r in match:
                    r[record["column"]] = record["value_b"]
            continue
        value = {"a": record["value_a"], "b": record["value_b"]}.get(
            decision.lower(), _parse_decision(decision)
        )
        for r in match:
            r[record["column"]] = value
    output = Path(output) if output else reconciliation.with_name(reconciliation.stem + ".final.xlsx")
    write_template(
        output,
        overwrite=True,  # as before write_template refused existing files; callers check the path
        data=data,
        readme=[f"FINAL extraction built from {reconciliation.name} and {consensus_path.name}."],
    )
    return output
