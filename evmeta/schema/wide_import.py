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
- keeps the reviewer's own columns named under ``[moderators]`` (cleaned, typed numeric or
  categorical) as extra columns of the arms sheet, which :func:`evmeta.build_comparisons`
  carries to the comparisons table, and writes the SYRCLE items named under
  ``[risk_of_bias]`` as risk_of_bias rows;
- puts every table row either in the workbook or in the import log with its reason, and
  lists every table column it does not read there as "not imported";
- refuses a table with two columns of one header (naming both), and folds the reasons of
  skipped rows to one line per root cause (docs/import_wide.md).

It lives in ``schema`` (not ``sheets``) because it needs the column specifications and the
template writer of layer 2; reading the table itself uses :func:`evmeta.sheets.read_raw`.
"""

from __future__ import annotations

import datetime
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
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
    SYRCLE_ITEMS,
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
LOG_COLUMNS = [
    "table_row",
    "study_id",
    "status",
    "treat_outcome_id",
    "control_outcome_id",
    "column",
    "reason",
]
_YEAR = re.compile(r"\b(19\d\d|20\d\d)\b")  # from 1900, as studies.year (columns.YEAR_MIN)
#: Moderator cells read as missing (other words, such as "Not reported" or "Unclear", are
#: levels of the moderator: a published subgroup often has them).
MODERATOR_MISSING = frozenset({"", "na", "n/a", "n.a.", "nan", "null", "#n/a"})
#: Words read as missing in a moderator whose other values are all numbers (then it is
#: numeric, with a note); in a text moderator they stay levels.
NOT_A_NUMBER_WORDS = frozenset({"not reported", "nr", "n.r.", "unclear", "unknown", "not stated", "?"})
_DATE_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?$|^\d{1,2}/\d{1,2}/\d{2,4}$")


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
        with other rows sharing it has that control's ``control_outcome_id``. Then one row
        per table column the map does not read: ``status`` "not imported", ``column`` its
        header, ``reason`` its letter (``table_row`` empty).
    notes : list of str
        Placeholders and other remarks, as sentences.
    workbook : Path or None
        The workbook written (None before writing).
    moderators : dict of str -> str
        Each ``[moderators]`` name and its type: ``numeric`` or ``categorical``.
    """

    data: dict[str, list[dict[str, Any]]]
    log: pd.DataFrame
    notes: list[str]
    workbook: Path | None = None
    moderators: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """Counts, then one line per cause of skipped rows (folded), the columns not
        imported and the notes."""
        rows = self.log[self.log["status"] != "not imported"]
        imported = int((rows["status"] == "imported").sum())
        skipped = len(rows) - imported
        controls = sum(1 for a in self.data["arms"] if a["role"] == "vehicle_control")
        lines = [
            f"{imported} comparisons from {len(self.data['studies'])} studies imported "
            f"({controls} control arms); {skipped} table rows skipped"
        ]
        lines.extend(fold_reasons(rows[rows["status"] == "skipped"]))
        unread = self.log.loc[self.log["status"] == "not imported", "column"].tolist()
        if unread:
            lines.append(f"{len(unread)} table column(s) not imported (not in the map): {', '.join(unread)}")
        if self.moderators:
            kept = ", ".join(f"{name} ({kind})" for name, kind in self.moderators.items())
            lines.append(f"moderators kept on the arms sheet: {kept}")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def cause(reason: str) -> str:
    """The root cause of a reason: the reason without the value or row it names
    (``treat_n: expected a number, got '1905-07-11'`` -> ``treat_n: expected a number``)."""
    text = re.sub(r",? got .*$", "", reason)
    return re.sub(r"table rows? [\d, ]+", "table row ...", text).strip()


def fold_reasons(skipped: pd.DataFrame) -> list[str]:
    """One line per root cause of the skipped rows, with a count: the first row's reason,
    then "... and N more rows with the same cause" (a date-formatted year column gives one
    line, not thousands)."""
    lines = []
    groups: dict[str, list[tuple[Any, str]]] = defaultdict(list)
    for row, reason in zip(skipped["table_row"], skipped["reason"], strict=True):
        groups[cause(str(reason))].append((row, str(reason)))
    for members in sorted(groups.values(), key=len, reverse=True):
        (row, reason), more = members[0], len(members) - 1
        line = f"  {len(members):>5}  {reason}"
        if more:
            line += (
                f" (table row {row}) ... and {more:,} more row{'s' if more > 1 else ''} with the same cause"
            )
        lines.append(line)
    return lines


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
    headers = header_index(table.header)
    absent = sorted(h for h in wide_map.headers() if h not in headers)
    if absent:
        raise SpecError(
            f"the map names column(s) {absent} that the table does not have; its columns: {', '.join(table.header)}"
        )
    index = {f: headers[h] for f, h in wide_map.columns.items()}
    moderators = {name: [headers[h] for h in hs] for name, hs in wide_map.moderators.items()}
    rob = {item: headers[h] for item, h in wide_map.risk_of_bias.items()}
    rows: list[dict[str, Any]] = []
    unusable: list[tuple[dict[str, Any], str, bool]] = []
    seen: dict[tuple, int] = {}
    for number, cells in table.rows:
        row: dict[str, Any] = dict(wide_map.constants)
        for name, i in index.items():
            row[name] = _value(cells[i] if i < len(cells) else None)
        row["_table_row"] = number
        row["_moderators"] = {name: _moderator(cells, where) for name, where in moderators.items()}
        row["_rob"] = {item: _raw_text(cells[i] if i < len(cells) else None) for item, i in rob.items()}
        row["year"], year_problem = _year(row.get("year"))
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
            or year_problem
            or unreadable
            or problems["treat"]
            or problems["control"]
        )
        signature = (*(str(row.get(name)) for name in index), str(row["_moderators"]), str(row["_rob"]))
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


def header_index(header: list[str]) -> dict[str, int]:
    """Header text (stripped) -> column index, read from the table's own header cells (no
    pandas ``x.1`` renaming). Two columns with one header are an error naming both: the
    last one would otherwise win without a word."""
    positions: dict[str, list[int]] = defaultdict(list)
    for i, h in enumerate(header):
        if str(h).strip():
            positions[str(h).strip()].append(i)
    twice = {text: found for text, found in positions.items() if len(found) > 1}
    if twice:
        listed = "; ".join(
            f"{len(found)} columns headed {text!r} ({' and '.join(f'column {_column_letter(i)}' for i in found)})"
            for text, found in twice.items()
        )
        raise SpecError(f"the table has {listed}: evmeta cannot tell which one is meant; rename all but one")
    return {h: found[0] for h, found in positions.items()}


def _raw_text(cell: Cell | None) -> str | None:
    """A cell's text, whitespace cleaned (runs of spaces -> one); None when empty."""
    if cell is None or cell.value is None or cell.kind in {"formula", "error"}:
        return None
    value = cell.value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        return _text(value)
    text = " ".join(_ILLEGAL.sub("\ufffd", str(value)).split())
    return text or None


def _moderator(cells: list[Cell], where: list[int]) -> Any:
    """The first non-missing cell of a moderator's columns (text or number)."""
    for i in where:
        cell = cells[i] if i < len(cells) else None
        if cell is not None and isinstance(cell.value, (int, float)) and not isinstance(cell.value, bool):
            if not math.isnan(float(cell.value)):
                return cell.value
            continue
        text = _raw_text(cell)
        if text is not None and text.casefold() not in MODERATOR_MISSING:
            return text
    return None


def _year(value: Any) -> tuple[int | None, str | None]:
    """A publication year from a cell; a date (a year typed into a date-formatted cell, which
    Excel shows as a day in 1905) is refused with how to fix the column."""
    if value is None:
        return None, None
    if isinstance(value, (datetime.date, datetime.datetime)) or _DATE_TEXT.match(str(value).strip()):
        shown = value.strftime("%Y-%m-%d") if isinstance(value, datetime.date) else str(value).strip()
        return None, (
            f"year: the column holds dates, not years (a year such as 2019 in a date-formatted cell "
            f"shows as a day in 1905): format the column as numbers, got {shown!r}"
        )
    number, why = _number(value, "year")
    if why or number is None or not number.is_integer() or not 1000 <= number <= 2100:
        return None, f"year: expected a year such as 2019, got {value!r}"
    return int(number), None


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
        "column": "",
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
        groups[_group_key(row, wide_map.control_n_is_split)].append(
            {**fill, **{k: v for k, v in row.items() if v is not None}}
        )
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
    imported = [member for members in groups.values() for member in members]
    data["risk_of_bias"] = _rob_rows(imported, wide_map, notes)
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
                **member.get("_moderators", {}),
            }
        )
        member["_experiment"] = exp
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
    kinds = _type_moderators(data["arms"], list(wide_map.moderators), notes)
    log = pd.DataFrame(log_rows, columns=LOG_COLUMNS).sort_values("table_row", kind="stable")
    unread = pd.DataFrame(_unread_columns(table, wide_map), columns=LOG_COLUMNS)
    log = pd.concat([log, unread], ignore_index=True) if len(unread) else log.reset_index(drop=True)
    return WideImport(data, log.astype({"table_row": "Int64"}), notes, moderators=kinds)


def _unread_columns(table: RawSheet, wide_map: WideMap) -> list[dict[str, Any]]:
    """Log rows for the table columns the map does not read (not a field, moderator or
    risk-of-bias item): "not imported", with the column's letter."""
    read = wide_map.headers()
    out = []
    for i, header in enumerate(table.header):
        if header in read:
            continue
        filled = sum(1 for _, cells in table.rows if i < len(cells) and _raw_text(cells[i]) is not None)
        name = header or f"(no header, column {_column_letter(i)})"
        if not header and not filled:
            continue
        out.append(
            {
                "table_row": None,
                "study_id": None,
                "status": "not imported",
                "treat_outcome_id": "",
                "control_outcome_id": "",
                "column": name,
                "reason": f"column {_column_letter(i)} ({filled} non-empty cells) is not in the map "
                "([columns], [moderators] or [risk_of_bias])",
            }
        )
    return out


def _type_moderators(arms: list[dict[str, Any]], names: list[str], notes: list[str]) -> dict[str, str]:
    """Type each moderator over the imported arms: ``numeric`` when every value reads as a
    number, or is one of :data:`NOT_A_NUMBER_WORDS` beside at least one number (those are
    then missing, with a note); else ``categorical`` (written as text, numbers as typed,
    levels differing only in case merged into the most frequent spelling, with a note)."""
    kinds: dict[str, str] = {}
    treated = [a for a in arms if a["role"] == "ev"]
    for name in names:
        values = [a.get(name) for a in treated if a.get(name) is not None]
        words = Counter(_text(v) for v in values if _number(v, name)[1] is not None)
        if len(words) < len(set(map(_text, values))) and all(
            w.casefold() in NOT_A_NUMBER_WORDS for w in words
        ):
            kinds[name] = "numeric"
            for arm in treated:
                if arm.get(name) is not None:
                    arm[name] = _number(arm[name], name)[0]
            if words:
                shown = ", ".join(f"{w!r} ({n} row{'s' if n > 1 else ''})" for w, n in words.items())
                notes.append(f"moderator {name} is numeric; {shown} read as missing")
            continue
        kinds[name] = "categorical"
        texts = Counter(_text(v) for v in values)
        spelling: dict[str, str] = {}
        for text, _ in texts.most_common():
            spelling.setdefault(text.casefold(), text)
        merged = sorted({t for t in texts if spelling[t.casefold()] != t})
        if merged:
            notes.append(
                f"moderator {name}: "
                + ", ".join(f"{t!r} read as {spelling[t.casefold()]!r}" for t in merged)
                + " (levels differing only in case)"
            )
        for arm in treated:
            if arm.get(name) is not None:
                arm[name] = spelling[_text(arm[name]).casefold()]
    return kinds


_SEVERITY = {"low": 0, "unclear": 1, "high": 2}


def _judgements(members: list[dict[str, Any]], wide_map: WideMap) -> list[dict[str, str | None]]:
    """Each imported row's SYRCLE judgements; a word the map cannot read is an error listing
    every (item, word) once, with its rows, so that one unknown word is one line."""
    unknown: dict[tuple[str, str], list[int]] = defaultdict(list)
    out = []
    for member in members:
        judged: dict[str, str | None] = {}
        for item, word in member.get("_rob", {}).items():
            judged[item] = None if word is None else wide_map.rob_values.get(word.casefold())
            if word is not None and judged[item] is None:
                unknown[(item, word)].append(member["_table_row"])
        out.append(judged)
    if unknown:
        lines = [
            f"risk_of_bias.{item} (column {wide_map.risk_of_bias[item]!r}): {word!r} in {len(rows)} row(s) "
            f"(table row{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows[:5]))}{', ...' if len(rows) > 5 else ''})"
            for (item, word), rows in unknown.items()
        ]
        raise SpecError(
            "risk-of-bias judgements the map cannot read:\n  "
            + "\n  ".join(lines)
            + f'\nadd each word to [risk_of_bias.values] as low, high or unclear, e.g. "{next(iter(unknown))[1]}" = "unclear"'
        )
    return out


def _rob_rows(members: list[dict[str, Any]], wide_map: WideMap, notes: list[str]) -> list[dict[str, Any]]:
    """risk_of_bias sheet rows: one per study when its rows agree on every item, else one
    per experiment; rows of one experiment that disagree get the most severe judgement
    (high > unclear > low), with a note."""
    if not wide_map.risk_of_bias:
        return []
    judgements = _judgements(members, wide_map)
    by_study: dict[str, list[tuple[dict[str, Any], dict[str, str | None]]]] = defaultdict(list)
    for member, judged in zip(members, judgements, strict=True):
        by_study[member["study_id"]].append((member, judged))
    rows: list[dict[str, Any]] = []
    conflicts = 0
    for study, entries in by_study.items():
        if all(all(v is None for v in judged.values()) for _, judged in entries):
            continue
        agree = all(len({j[item] for _, j in entries if j[item]}) <= 1 for item in wide_map.risk_of_bias)
        units: dict[str | None, list] = defaultdict(list)
        for member, judged in entries:
            units[None if agree else member["_experiment"]].append((member, judged))
        for experiment, unit in units.items():
            row: dict[str, Any] = {"study_id": study, "experiment_id": experiment}
            remarks = []
            for item in SYRCLE_ITEMS:
                words = {j.get(item) for _, j in unit} - {None}
                row[item] = max(words, key=_SEVERITY.__getitem__) if words else None
                if len(words) > 1:
                    remarks.append(
                        f"{item}: table rows give {', '.join(sorted(words))}; the most severe is kept"
                    )
            table_rows = ", ".join(str(m["_table_row"]) for m, _ in unit)
            row["notes"] = "; ".join([f"imported from table row(s) {table_rows}", *remarks])
            conflicts += bool(remarks)
            rows.append(row)
    if conflicts:
        notes.append(
            f"risk_of_bias: in {conflicts} experiment(s) the table rows disagree on an item; the most "
            "severe judgement is kept (the row's notes say which)"
        )
    return rows


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
        a value for fields the table lacks, ``[options] control_n_is_split``,
        ``[moderators]`` name = header (or a list of headers) and ``[risk_of_bias]`` SYRCLE
        item = header with ``[risk_of_bias.values]`` (docs/import_wide.md). Fields:
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
        A bad map, a header the table lacks or has twice, a risk-of-bias word the map cannot
        read, or an unreadable table (the message says which).
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
    extra = {
        name: f"Moderator from the table column(s) {', '.join(map(repr, wide_map.moderators[name]))} "
        f"({kind}; imported by evmeta import-wide). It is carried to the comparisons table."
        for name, kind in result.moderators.items()
    }
    if extra:
        readme.append(
            "Moderators (the reviewer's own columns) are extra columns at the right of the arms sheet: "
            + ", ".join(f"{n} ({k})" for n, k in result.moderators.items())
        )
    if result.data["risk_of_bias"]:
        readme.append(
            "risk_of_bias: SYRCLE items imported from the table columns "
            + ", ".join(f"{h!r} -> {i}" for i, h in wide_map.risk_of_bias.items())
            + "; the other items are empty (not judged in the table)"
        )
    result.workbook = write_template(
        output, data=result.data, readme=readme, overwrite=True, extra_columns={"arms": extra}
    )
    write_csv(result.log, output.with_name(f"{output.stem}.import_log.csv"))
    return result


__all__ = ["WideImport", "WideMap", "import_wide", "parse_map", "read_map", "read_table", "wide_to_sheets"]
