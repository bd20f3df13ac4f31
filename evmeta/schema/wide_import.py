"""Import a comparison table (one row per comparison, treatment and control side by side)
into an extraction workbook: ``evmeta import-wide TABLE --map MAP.toml -o BOOK.xlsx``.

CAMARADES/SyRF-style reviews keep their data as such tables (``n_RIC``, ``Mean_RIC``,
``n_Control``, ...). A TOML map names the table's header for each evmeta field
(``[columns]``), gives values for fields the table lacks (``[constants]``) and says whether
the control n was already divided among the arms sharing it (``[options]
control_n_is_split``). The importer

- groups rows of one study (outcome, time point, species, strain, sex, disease model) whose
  control values are identical into one experiment with one control arm shared by their
  treatment arms, restoring the control's reported n when ``control_n_is_split`` from every
  row sharing it (a row left out for its treatment arm included: the group had those
  animals; the control row's notes name it);
- writes studies, preparations, experiments, arms and outcomes rows, so that
  :func:`evmeta.build_comparisons` (``shared_control="split"``) gives the yi and vi that
  escalc gives on the table itself (where a row sharing a control is left out, the
  control is divided among the arms imported, as build_comparisons always does);
- fills required fields the table does not have with a placeholder and says so (README
  sheet, the row's ``notes``, :attr:`WideImport.notes`), so the book validates and tells
  the reviewer what to fill in;
- puts every table row either in the workbook or in the import log with its reason.

It lives in ``schema`` (not ``sheets``) because it needs the column specifications and the
template writer of layer 2; reading the table itself uses :func:`evmeta.sheets.read_raw`.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from evmeta.errors import SpecError
from evmeta.schema.cells import MISSING_TOKENS, parse_number
from evmeta.schema.template import write_template
from evmeta.schema.wide_map import (
    ARM_STATISTICS,
    EXPERIMENT_FIELDS,
    OUTCOME_FIELDS,
    PREP_FIELDS,
    STATISTICS,
    STUDY_FIELDS,
    WideMap,
    parse_map,
    read_map,
)
from evmeta.sheets.reader import Cell, RawSheet, UnreadableInput, read_raw

#: Values written where the table and the map give none for a required field.
PLACEHOLDERS = {
    "year": 2000,
    "species": "rat",
    "disease_model": "other",
    "outcome": "unnamed outcome",
    "higher_is_better": "yes",
    "isolation_method": "UC",
    "msc_tissue_source": "other",
}
LOG_COLUMNS = ["table_row", "study_id", "status", "treat_outcome_id", "control_outcome_id", "reason"]
_YEAR = re.compile(r"\b(19\d\d|20\d\d)\b")  # from 1900, as studies.year (columns.YEAR_MIN)


@dataclass
class WideImport:
    """What :func:`import_wide` did.

    Attributes
    ----------
    data : dict of str -> list of dict
        Rows written per sheet.
    log : DataFrame
        One row per table row: ``table_row`` (row number in the table, header = 1),
        ``study_id``, ``status`` (imported / skipped), ``treat_outcome_id``,
        ``control_outcome_id``, ``reason``. A skipped row whose control arm was imported
        with other rows sharing it has that control's ``control_outcome_id``.
    notes : list of str
        Placeholders and other remarks, as sentences.
    workbook : Path or None
        The workbook written (None before writing).
    """

    data: dict[str, list[dict[str, Any]]]
    log: pd.DataFrame
    notes: list[str]
    workbook: Path | None = None

    def summary(self) -> str:
        imported = int((self.log["status"] == "imported").sum())
        skipped = len(self.log) - imported
        controls = sum(1 for a in self.data["arms"] if a["role"] == "vehicle_control")
        lines = [
            f"{imported} comparisons from {len(self.data['studies'])} studies imported "
            f"({controls} control arms); {skipped} table rows skipped"
        ]
        for reason, count in self.log.loc[self.log["status"] == "skipped", "reason"].value_counts().items():
            lines.append(f"  {count:>5}  {reason}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def read_table(path: str | Path, sheet: str | None = None) -> RawSheet:
    """The table's header and rows, from a CSV file or one sheet of an .xlsx workbook."""
    try:
        book = read_raw(path)
    except UnreadableInput as exc:
        raise SpecError(str(exc)) from None
    if Path(path).is_dir():
        raise SpecError(f"{path} is a folder; give the CSV file or workbook holding the table")
    if sheet is None:
        return next(iter(book.sheets.values()))
    if sheet not in book.sheets:
        raise SpecError(f"{path}: no sheet {sheet!r}; sheets: {', '.join(book.sheets)}")
    return book.sheets[sheet]


#: Control characters a workbook cannot store; shown as U+FFFD in the imported cell.
_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _value(cell: Cell | None) -> Any:
    if cell is None or cell.value is None or cell.kind in {"formula", "error"}:
        return None
    value = cell.value
    if isinstance(value, str):
        value = _ILLEGAL.sub("\ufffd", value).strip()
        if value.casefold() in MISSING_TOKENS | {""}:
            return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _number(value: Any, name: str) -> tuple[float | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    else:
        try:
            number = parse_number(str(value))
        except ValueError:
            return None, f"{name}: expected a number, got {value!r}"
    if not math.isfinite(number):
        return None, f"{name}: expected a finite number, got {value!r}"
    return number, None


def _usable(stats: dict[str, float | None], arm: str, split: bool = False) -> str | None:
    """Why an arm's statistics cannot give an effect size (None when they can).

    An n below 1 is refused (0.4 animals is a typing error, not one animal), except for a
    control n typed already divided among the arms sharing it (``split``).
    """
    if stats["n"] is None:
        return f"{arm} n is missing"
    if stats["n"] <= 0:
        return f"{arm} n must be > 0, got {stats['n']:g}"
    if stats["n"] < 1 and not split:
        return f"{arm} n must be at least 1, got {stats['n']:g}"
    has = {k for k, v in stats.items() if v is not None}
    if not (
        {"mean", "sd"} <= has
        or {"mean", "sem"} <= has
        or {"median", "q1", "q3"} <= has
        or {"events", "total"} <= has
    ):
        return f"{arm} arm has no usable statistic (mean with SD or SEM, median with quartiles, or events with total)"
    return None


def _read_rows(
    table: RawSheet, wide_map: WideMap
) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str, bool]]]:
    """Rows as field -> value (statistics as floats), and the rows that cannot be used.

    Returns
    -------
    rows : list of dict
        Usable rows.
    unusable : list of (dict, str, bool)
        Each row that cannot be used, as parsed; the reason (the first problem found); and
        whether its control arm is readable, so that it still counts among the arms sharing
        that control (a control n typed split was divided among all of them).
    """
    headers = _mapped_headers(table.header, wide_map)
    absent = sorted(h for h in wide_map.columns.values() if h not in headers)
    if absent:
        raise SpecError(
            f"the map names column(s) {absent} that the table does not have; its columns: {', '.join(table.header)}"
        )
    index = {f: headers[h] for f, h in wide_map.columns.items()}
    rows: list[dict[str, Any]] = []
    unusable: list[tuple[dict[str, Any], str, bool]] = []
    seen: dict[tuple, int] = {}
    for number, cells in table.rows:
        row: dict[str, Any] = dict(wide_map.constants)
        for name, i in index.items():
            row[name] = _value(cells[i] if i < len(cells) else None)
        row["_table_row"] = number
        study = row.get("study_id")
        # Every statistic is read (not only up to the first problem): a row whose treatment
        # arm is unusable may still share a control arm with rows that are imported.
        problems: dict[str, str | None] = {"treat": None, "control": None}
        for name in ARM_STATISTICS:
            row[name], why = _number(row.get(name), name)
            if not why and row[name] is not None and name.endswith(("_sd", "_sem")) and row[name] <= 0:
                why = f"{name} must be > 0, got {row[name]:g}"
            arm = name.split("_")[0]
            problems[arm] = problems[arm] or why
        unreadable = problems["treat"] or problems["control"]
        for arm, label in (("treat", "treatment"), ("control", "control")):
            split = arm == "control" and wide_map.control_n_is_split
            stats = {s: row.get(f"{arm}_{s}") for s in STATISTICS}
            problems[arm] = problems[arm] or _usable(stats, label, split)
        has_study = study not in (None, "")
        if has_study:
            row["study_id"] = _text(study)
        reason = (
            ("study id is empty" if not has_study else None)
            or unreadable
            or problems["treat"]
            or problems["control"]
        )
        signature = tuple(str(row.get(name)) for name in index)
        if not reason and signature in seen:
            reason = f"the same values as table row {seen[signature]} (pasted twice?); not imported again"
            unusable.append((row, reason, False))  # never counted twice in a shared control
            continue
        seen.setdefault(signature, number)
        if reason:
            unusable.append((row, reason, has_study and problems["control"] is None))
            continue
        rows.append(row)
    return rows, unusable


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _mapped_headers(header: list[str], wide_map: WideMap) -> dict[str, int]:
    """Header text -> column index; a header the map names that appears twice is an error
    naming both columns (the last one would otherwise win without a word)."""
    positions: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(header):
        positions[h].append(i)
    for name, text in wide_map.columns.items():
        found = positions.get(text, [])
        if len(found) > 1:
            where = " and ".join(f"column {_column_letter(i)}" for i in found)
            raise SpecError(
                f"the table has {len(found)} columns headed {text!r} ({where}); the map's "
                f"columns.{name} cannot tell which is meant: rename all but one"
            )
    return {h: found[0] for h, found in positions.items()}


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _log(row: dict[str, Any], status: str, reason: str, treat: str = "", control: str = "") -> dict[str, Any]:
    study = row.get("study_id")
    return {
        "table_row": row["_table_row"],
        "study_id": None if study is None else _text(study),
        "status": status,
        "treat_outcome_id": treat,
        "control_outcome_id": control,
        "reason": reason,
    }


def _group_key(row: dict[str, Any], split: bool = False) -> tuple:
    """Rows of one experiment share this key. With a split control n the n typed per row may
    differ (10 animals over 3 arms typed 3.33/3.33/3.34 or 3/3/4): it is not part of the key,
    and the control's n is restored as the sum."""
    shared = (
        *EXPERIMENT_FIELDS,
        "outcome",
        "timepoint",
        "timepoint_unit",
        *(f"control_{s}" for s in STATISTICS if not (split and s == "n")),
    )
    return (row["study_id"], *(None if row.get(f) is None else str(row.get(f)) for f in shared))


def _placeholders(wide_map: WideMap) -> dict[str, Any]:
    """Required fields neither mapped nor given as constants -> the value written instead."""
    given = set(wide_map.columns) | set(wide_map.constants)
    return {f: v for f, v in PLACEHOLDERS.items() if f not in given}


def _whole(value: float, what: str, notes: list[str]) -> int:
    whole = round(value)
    if abs(value - whole) > 0.01:
        notes.append(f"{what} {value:g} is not a whole number; written as {whole}")
    return max(int(whole), 1)


def _statistics(row: dict[str, Any], arm: str, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {s: row.get(f"{arm}_{s}") for s in STATISTICS if s != "n"}
    for s in ("events", "total"):
        if out[s] is not None and float(out[s]).is_integer():
            out[s] = int(out[s])
    return {"n": n, **out}


def _study_rows(rows: list[dict[str, Any]], fill: dict[str, Any], notes: list[str]) -> list[dict[str, Any]]:
    studies: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["study_id"] in studies:
            continue
        study = {f: row.get(f) for f in STUDY_FIELDS}
        remarks = []
        if study["first_author"] is None:
            study["first_author"] = row["study_id"]
            remarks.append("first_author is the study id (not in the table)")
        if study["year"] is None:
            found = _YEAR.search(str(row.get("first_author") or ""))
            study["year"] = int(found.group(1)) if found else fill.get("year", PLACEHOLDERS["year"])
            remarks.append("year read from first_author" if found else "year is a placeholder: fill it in")
        study["notes"] = "; ".join(remarks) or None
        studies[row["study_id"]] = study
    if any(s["notes"] and "placeholder" in s["notes"] for s in studies.values()):
        notes.append("studies: year is a placeholder (2000) where the table gives none; fill it in")
    return list(studies.values())


def _build(
    rows: list[dict[str, Any]],
    unusable: list[tuple[dict[str, Any], str, bool]],
    wide_map: WideMap,
) -> tuple[dict[str, list[dict]], list[dict], list[str]]:
    """Workbook rows for the usable table rows: one experiment per shared control arm.

    Rows that cannot be used but whose control values equal those of an imported control
    arm count among the arms sharing it (its n is restored from all of them) and are named
    in that control row's notes and, as ``control_outcome_id``, in their log row.
    """
    fill = _placeholders(wide_map)
    notes = [
        f"{name} is not in the table: every row has the placeholder {value!r}; replace it in the workbook"
        for name, value in fill.items()
        if name != "year"
    ]
    data: dict[str, list[dict[str, Any]]] = {
        s: [] for s in ("preparations", "experiments", "arms", "outcomes")
    }
    data["studies"] = _study_rows(rows, fill, notes)
    log: list[dict[str, Any]] = []
    preps: dict[tuple, str] = {}
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[_group_key(row, wide_map.control_n_is_split)].append({**fill, **{k: v for k, v in row.items() if v is not None}})
    left_out: dict[tuple, list[tuple[dict[str, Any], str]]] = defaultdict(list)
    for row, reason, control_readable in unusable:
        key = _group_key(row, wide_map.control_n_is_split) if control_readable else None
        if key in groups:
            left_out[key].append((row, reason))
        else:
            log.append(_log(row, "skipped", reason))
    experiments_per_study: dict[str, int] = defaultdict(int)
    for key, members in groups.items():
        study = members[0]["study_id"]
        experiments_per_study[study] += 1
        exp = f"{study}-E{experiments_per_study[study]}"
        log.extend(_experiment(members, left_out[key], exp, wide_map, data, preps))
    _mark_placeholders(data, fill)
    return data, log, notes


def _experiment(
    members: list[dict[str, Any]],
    left_out: list[tuple[dict[str, Any], str]],
    exp: str,
    wide_map: WideMap,
    data: dict[str, list[dict[str, Any]]],
    preps: dict[tuple, str],
) -> list[dict[str, Any]]:
    """Rows of one experiment (a control arm and the treatment arms sharing it); log rows.

    ``left_out`` are table rows sharing this control whose treatment arm cannot be used
    (with the reason): a split control n was divided among them too, so the control's n is
    restored from every row sharing it; :func:`evmeta.build_comparisons` then divides it
    among the arms that are imported.
    """
    first, study = members[0], members[0]["study_id"]
    data["experiments"].append(
        {"experiment_id": exp, "study_id": study, **{f: first.get(f) for f in EXPERIMENT_FIELDS}}
    )
    row_notes: list[str] = []
    typed = [m["control_n"] for m in members] + [r["control_n"] for r, _ in left_out]
    n_c = math.fsum(typed) if wide_map.control_n_is_split else first["control_n"]
    control_n = _whole(n_c, f"{exp}: control n", row_notes)
    control_arm, control_outcome = f"{exp}-C", f"{exp}-O0"
    data["arms"].append(
        {"arm_id": control_arm, "experiment_id": exp, "role": "vehicle_control", "arm_label": "control"}
    )
    outcome = {f: first.get(f) for f in OUTCOME_FIELDS}
    data["outcomes"].append(
        {
            "outcome_id": control_outcome,
            "experiment_id": exp,
            "arm_id": control_arm,
            **outcome,
            **_statistics(first, "control", control_n),
            "notes": _control_note(members, left_out, typed, control_n, wide_map),
        }
    )
    log = [_log(row, "skipped", reason, control=control_outcome) for row, reason in left_out]
    for j, member in enumerate(members, start=1):
        prep_key = (study, *(str(member.get(f)) for f in PREP_FIELDS))
        if prep_key not in preps:
            preps[prep_key] = f"{study}-P{sum(1 for key in preps if key[0] == study) + 1}"
            data["preparations"].append(
                {"prep_id": preps[prep_key], "study_id": study, **{f: member.get(f) for f in PREP_FIELDS}}
            )
        arm, outcome_id = f"{exp}-A{j}", f"{exp}-O{j}"
        data["arms"].append(
            {
                "arm_id": arm,
                "experiment_id": exp,
                "role": "ev",
                "prep_id": preps[prep_key],
                "arm_label": member.get("treat_label"),
                "dose_text": member.get("dose_text"),
                "route": member.get("route"),
            }
        )
        remarks = list(row_notes)
        treat_n = _whole(member["treat_n"], "treatment n", remarks)
        data["outcomes"].append(
            {
                "outcome_id": outcome_id,
                "experiment_id": exp,
                "arm_id": arm,
                **outcome,
                **_statistics(member, "treat", treat_n),
                "notes": f"table row {member['_table_row']}",
            }
        )
        log.append(_log(member, "imported", "; ".join(remarks), outcome_id, control_outcome))
    return log


def _control_note(
    members: list[dict[str, Any]],
    left_out: list[tuple[dict[str, Any], str]],
    typed: list[float],
    control_n: int,
    wide_map: WideMap,
) -> str | None:
    """The control row's notes: which table rows share it, how its n was restored, and
    which of those rows were not imported (and why)."""
    k_table = len(members) + len(left_out)
    if k_table == 1:
        return None
    table_rows = sorted(m["_table_row"] for m in members) + [r["_table_row"] for r, _ in left_out]
    shown = ", ".join(map(str, sorted(table_rows)))
    note = f"control shared by {k_table} treatment arms (table rows {shown})"
    if wide_map.control_n_is_split:
        if len(set(typed)) == 1:
            note += f"; n restored as {typed[0]:g} x {k_table} = {control_n}"
        else:
            note += f"; n restored as {' + '.join(f'{n:g}' for n in typed)} = {control_n}"
    for row, reason in left_out:
        note += f"; table row {row['_table_row']} not imported: {reason}"
    if left_out:
        arms = "the imported arm uses" if len(members) == 1 else f"the {len(members)} imported arms share"
        note += f"; {arms} all {control_n} control animals"
    return note


def _mark_placeholders(data: dict[str, list[dict[str, Any]]], fill: dict[str, Any]) -> None:
    """Say in each row's notes which of its values are placeholders."""
    where = {"experiments": EXPERIMENT_FIELDS, "outcomes": OUTCOME_FIELDS, "preparations": PREP_FIELDS}
    for sheet, fields in where.items():
        names = [f for f in fields if f in fill]
        if not names:
            continue
        remark = f"placeholder (not in the table): {', '.join(names)}"
        for row in data[sheet]:
            row["notes"] = f"{row['notes']}; {remark}" if row.get("notes") else remark


def wide_to_sheets(table: RawSheet, wide_map: WideMap) -> WideImport:
    """Map a table to workbook rows (no file written); see :func:`import_wide`."""
    rows, unusable = _read_rows(table, wide_map)
    data, log_rows, notes = _build(rows, unusable, wide_map)
    data["risk_of_bias"] = []
    log = pd.DataFrame(log_rows, columns=LOG_COLUMNS).sort_values("table_row", kind="stable")
    return WideImport(data, log.reset_index(drop=True), notes)


def import_wide(
    table: str | Path, map_path: str | Path, output: str | Path, *, sheet: str | None = None
) -> WideImport:
    """Import a comparison table into an extraction workbook.

    Parameters
    ----------
    table : str or Path
        CSV file or .xlsx workbook, one row per comparison (treatment and control columns
        side by side).
    map_path : str or Path
        The map (TOML): ``[columns]`` evmeta field = the table's header, ``[constants]``
        a value for fields the table lacks, ``[options] control_n_is_split``. Fields:
        ``study_id`` (required), ``first_author``, ``year``, ``title``, ``doi``,
        ``species``, ``strain``, ``sex``, ``disease_model``, ``outcome``, ``unit``,
        ``timepoint``, ``timepoint_unit``, ``higher_is_better``, ``dose_text``, ``route``,
        ``isolation_method``, ``msc_tissue_source``, ``treat_label``, and per arm
        ``treat_``/``control_`` + ``n``, ``mean``, ``sd``, ``sem``, ``median``, ``q1``,
        ``q3``, ``events``, ``total``.
    output : str or Path
        Workbook to write (.xlsx). The import log is written beside it as
        ``<name>.import_log.csv``.
    sheet : str, optional
        Sheet of an .xlsx table (default: the first).

    Returns
    -------
    WideImport

    Raises
    ------
    SpecError
        A bad map, a header the table lacks, or an unreadable table (the message says which).
    """
    from evmeta.sheets.export import write_csv

    output = Path(output)
    if output.suffix.lower() != ".xlsx":
        raise SpecError(f"{output} should end in .xlsx")
    wide_map = read_map(map_path)
    try:
        result = wide_to_sheets(read_table(table, sheet), wide_map)
    except SpecError as exc:
        message = str(exc)
        raise SpecError(message if str(table) in message else f"{Path(table).name}: {message}") from None
    readme = [
        f"Imported from {Path(table).name} with the map {Path(map_path).name} by evmeta import-wide.",
        "Each experiment holds one control arm and the treatment arms that share it; "
        "every outcome row's notes give its table row.",
        *(f"TO FILL IN: {n}" for n in result.notes),
    ]
    # As before write_template refused existing files (the CLI checks the path first).
    result.workbook = write_template(output, data=result.data, readme=readme, overwrite=True)
    write_csv(result.log, output.with_name(f"{output.stem}.import_log.csv"))
    return result


__all__ = ["WideImport", "WideMap", "import_wide", "parse_map", "read_map", "read_table", "wide_to_sheets"]
