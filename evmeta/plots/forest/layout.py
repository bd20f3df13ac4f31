"""Forest plot layout: cell texts, column widths from measured text, wrapped rows of
varying height, and the split of the rows over pages of at most ``max_height_mm``.

All lengths are inches unless a name says otherwise; every text is in the figures' one
family (DejaVu Sans, whose digits are tabular, so right-aligned numbers line up), measured as
matplotlib renders it, so what fits here fits on the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evmeta.formatting import power_of_ten
from evmeta.harmonize.arm_doses import REFERENCE_WEIGHT_LABEL, reference_weight_column
from evmeta.plots._text import minus, number, text_width_pt, wrap
from evmeta.schema.vocabulary import display_label

PT = 1 / 72
PAD_IN = 0.06  # gap between columns
COLUMN_TITLES = {
    "label": "Study",
    "n": "n EV/ctrl",
    "dose": "Dose",
    "isolation_method": "Isolation",
    "species": "Species",
    "disease_model": "Model",
    "outcome": "Outcome",
    "timepoint_label": "Time",
}
DOSE_UNITS = [("dose_particles_per_kg", "p/kg"), ("dose_cell_equivalents_per_kg", "CE/kg")]
#: Footnote key of each abbreviated dose unit (see ``note_keys``).
DOSE_NOTE_KEYS = {"p/kg": "p", "CE/kg": "CE"}


@dataclass
class Row:
    """One row of the plot: its kind, what it shows, its wrapped texts and its height."""

    kind: str  # header, group, study, pooled, overall, prediction, note, blank
    item: Any
    cells: dict[str, list[str]] = field(default_factory=dict)
    height: float = 0.0
    group: str | None = None
    notes: frozenset[str] = frozenset()  # footnotes its cells need (see ``note_keys``)


@dataclass
class Geometry:
    """Where everything goes across the page."""

    width: float
    font: float
    left: list[tuple[str, float, float]]  # column, x0, width
    panel: tuple[float, float]
    right: list[tuple[str, float, str]]  # column, right edge x, header
    limits: tuple[float, float]
    titles: dict[str, str] = field(default_factory=lambda: dict(COLUMN_TITLES))  # left headers

    @property
    def left_width(self) -> float:
        return self.left[-1][1] + self.left[-1][2] - self.left[0][1] if self.left else 1.0

    def line(self) -> float:
        return 1.2 * self.font * PT

    def row_height(self, lines: int) -> float:
        return (lines * 1.2 * self.font + 0.45 * self.font) * PT


def fractional(value: float) -> bool:
    return pd.notna(value) and abs(value - round(value)) > 1e-9


def split_control(row: pd.Series) -> bool:
    """Whether the row's control n was divided among arms sharing it.

    ``n_control`` differing from ``n_control_reported`` says so even when the split n is
    whole (6 animals shared by 3 arms: 2); a table without ``n_control_reported`` falls
    back to a fractional ``n_control``.
    """
    n_control = row.get("n_control", np.nan)
    reported = row.get("n_control_reported", np.nan)
    if pd.notna(n_control) and pd.notna(reported):
        return not np.isclose(float(n_control), float(reported))
    return fractional(n_control)


def cell(row: pd.Series, column: str) -> str:
    """Text of one annotation cell (``n``: treated/control animals, ``*`` marks a split control,
    whose n is shown to one decimal)."""
    if column == "n":
        if "n_treat" in row and "n_control" in row and pd.notna(row["n_treat"]):
            if split_control(row):
                return f"{row['n_treat']:g}/{round(float(row['n_control']), 1):g}*"
            return f"{row['n_treat']:g}/{row['n_control']:g}"
        return ""
    if column == "dose":
        return dose_text(row)
    if column == "label":
        return str(row.get("_label", row.get("label", "")))
    return display_label(row.get(column, ""), column)


#: Marks a per-kg dose computed from the species' reference body weight (footnoted).
REFERENCE_WEIGHT_MARK = "†"


def reference_mark(row: pd.Series, key: str) -> str:
    """``†`` when the row's dose in basis ``key`` is per kg only through the reference body weight."""
    return REFERENCE_WEIGHT_MARK if row.get(reference_weight_column(key)) == REFERENCE_WEIGHT_LABEL else ""


def dose_text(row: pd.Series) -> str:
    """The harmonized per-kg dose, compactly: protein, else particles (p), else cell
    equivalents (CE); ``†`` when it is per kg only through the species' reference body weight."""
    protein = row.get("dose_ug_protein_per_kg", np.nan)
    if pd.notna(protein):
        mark = reference_mark(row, "dose_ug_protein_per_kg")
        return (f"{protein / 1000:.3g} mg/kg" if protein >= 1000 else f"{protein:.3g} µg/kg") + mark
    for key, unit in DOSE_UNITS:
        value = row.get(key, np.nan)
        if pd.notna(value) and value > 0:
            return f"{power_of_ten(value)} {unit}{reference_mark(row, key)}"
    reported = row.get("dose_reported")
    return str(reported) if isinstance(reported, str) else "–"


def interval(est: float, lo: float, hi: float) -> str:
    return f"{number(est)} [{number(lo)}, {number(hi)}]"


def column_titles(treated: str = "EV") -> dict[str, str]:
    """:data:`COLUMN_TITLES` with the animals column named for the treated arms
    (``treated``: "EV" -> "n EV/ctrl", "treated" -> "n treated/ctrl")."""
    return {**COLUMN_TITLES, "n": f"n {treated}/ctrl"}


def geometry(
    rows: pd.DataFrame,
    columns: tuple[str, ...],
    right: list[tuple[str, str]],
    width_in: float,
    limits: tuple[float, float],
    titles: dict[str, str] = COLUMN_TITLES,
) -> tuple[Geometry, tuple[str, ...]]:
    """Column widths from the measured texts; narrow figures drop annotation columns from the
    right (never the label) and use a 6 pt font."""
    font = 7.0 if width_in > 4.5 else 6.0
    est_w = max(text_width_pt(interval(*r), font) for r in rows[["_est", "_lo", "_hi"]].to_numpy())
    est_header = dict(right).get("est", "Estimate [95% CI]")
    est_w = max(est_w, text_width_pt(est_header, font, bold=True)) * PT + PAD_IN
    right_w = []
    for name, header in right:
        head = max(text_width_pt(part, font, bold=True) for part in header.split("\n"))
        head = max(
            head, text_width_pt("100.0 (100.0)" if name == "weight_both" else "100.0", font, bold=True)
        )
        right_w.append((name, header, (head if name != "est" else 0) * PT + PAD_IN))
    right_w = [(n, h, est_w if n == "est" else w) for n, h, w in right_w]
    right_total = sum(w for _, _, w in right_w)
    panel_min = (0.32 if font < 7 else 0.27) * width_in
    natural = {}
    for c in columns:
        texts = [cell(r, c) for _, r in rows.iterrows()]
        widest = max(
            [text_width_pt(titles.get(c, c), font, bold=True)]
            + [text_width_pt(t, font) for t in texts]
        )
        natural[c] = min(widest * PT, 2.6 if c == "label" else 1.1) + PAD_IN
    min_label = min(0.95 if font < 7 else 1.2, natural.get("label", 1.0))
    if font < 7:
        panel_min = max(0.6, min(panel_min, width_in - 0.2 - right_total - min_label))

    def left_needed(cols: list[str]) -> float:
        return sum(natural[c] for c in cols if c != "label") + (min_label if "label" in cols else 0)

    kept = list(columns)
    while left_needed(kept) + right_total + panel_min + 0.1 > width_in and any(c != "label" for c in kept):
        kept.remove([c for c in kept if c != "label"][-1])
    widths = {c: natural[c] for c in kept}
    if "label" in widths:
        room = width_in - right_total - panel_min - 0.1 - sum(w for c, w in widths.items() if c != "label")
        widths["label"] = max(min_label, min(natural["label"], room))
    x, left = 0.05, []
    for c in kept:
        left.append((c, x, widths[c]))
        x += widths[c]
    panel = (x + 0.08, width_in - right_total - 0.08)
    edge, right_cols = panel[1] + 0.04, []
    for name, header, w in right_w:
        edge += w
        right_cols.append((name, edge, header))
    return Geometry(width_in, font, left, panel, right_cols, limits, titles), tuple(kept)


def note_keys(row: pd.Series, columns: tuple[str, ...] | list[str]) -> frozenset[str]:
    """Footnotes a comparison's cells need: ``split`` (a ``*`` in the n column), the
    dose units abbreviated in the dose column (``p``, ``CE``) and ``reference_weight`` (a
    ``†`` dose)."""
    keys = set()
    if "n" in columns and cell(row, "n").endswith("*"):
        keys.add("split")
    if "dose" in columns:
        text = dose_text(row)
        unit = text.rsplit(" ", 1)[-1].removesuffix(REFERENCE_WEIGHT_MARK)
        if unit in DOSE_NOTE_KEYS:
            keys.add(DOSE_NOTE_KEYS[unit])
        if text.endswith(REFERENCE_WEIGHT_MARK):
            keys.add("reference_weight")
    return frozenset(keys)


def study_row(row: pd.Series, geo: Geometry) -> Row:
    cells = {c: wrap(cell(row, c), (w - PAD_IN) / PT, geo.font) for c, _, w in geo.left}
    lines = max([1] + [len(v) for v in cells.values()])
    notes = note_keys(row, [c for c, _, _ in geo.left])
    return Row("study", row, cells, geo.row_height(lines), notes=notes)


def text_row(
    kind: str, item: Any, text: str, geo: Geometry, full_width: bool = False, bold: bool = False
) -> Row:
    """A row whose text sits at the left: across the label columns, or across the page (notes)."""
    width = 0.95 * (geo.width - 0.1) if full_width else geo.left_width
    size = geo.font - 0.5 if kind == "note" else geo.font
    lines = wrap(minus(text) if kind == "note" else text, width / PT - 2, size, bold=bold)
    return Row(kind, item, {"left": lines}, geo.row_height(len(lines)))


def paginate(
    rows: list[Row],
    header: Row,
    geo: Geometry,
    room: float | None,
    last_extra: float = 0.0,
    notes_height: Callable[[frozenset[str]], float] | None = None,
) -> list[list[Row]]:
    """Split body rows into pages whose rows take at most ``room`` inches (None: one page).

    Each page also holds the footnotes its rows need (``notes_height`` of the union of their
    ``notes``: every page explains its own marks and abbreviations), and the last page
    ``last_extra`` inches more (the notes under its axis). A subgroup broken by a page
    restarts under '<name> (continued)'; a heading never ends a page.
    """
    if room is None:
        return [[header, *rows]]

    def notes_of(page_rows: list[Row]) -> float:
        keys = frozenset().union(*(r.notes for r in page_rows))
        return notes_height(keys) if notes_height is not None else 0.0

    room -= header.height
    pages: list[list[Row]] = [[header]]
    used = 0.0
    for index, row in enumerate(rows):
        # A heading stays with its first row, a subtotal with its heterogeneity note, and the
        # overall diamond with the prediction interval.
        joined = row.kind in {"group", "pooled", "overall"} and index + 1 < len(rows)
        coming = [row, rows[index + 1]] if joined else [row]
        need = sum(r.height for r in coming)
        if used > 0 and used + need + notes_of(pages[-1] + coming) > room:
            # A subtotal never starts a page alone: its last two comparisons come along.
            carry: list[Row] = []
            while row.kind == "pooled" and len(carry) < 2 and pages[-1][-1].kind == "study":
                carry.insert(0, pages[-1].pop())
            pages.append([header])
            used = 0.0
            if row.group is not None and row.kind not in {"group", "blank"}:
                cont = text_row("group", row.group, f"{row.group} (continued)", geo, True, bold=True)
                pages[-1].append(cont)
                used += cont.height
            pages[-1].extend(carry)
            used += sum(r.height for r in carry)
        if row.kind == "blank" and used == 0:
            continue
        pages[-1].append(row)
        used += row.height
    if used + notes_of(pages[-1]) + last_extra > room and len(pages[-1]) > 2:
        # The notes do not fit under the last page: its last rows start a page of their own,
        # from a subgroup heading if one fits, else from a comparison a few rows up.
        tail = pages[-1][1:]
        heights = [r.height for r in tail]
        start = next(
            (
                i
                for i in range(len(tail) - 1, 0, -1)
                if tail[i].kind == "group" and sum(heights[i:]) + notes_of(tail[i:]) + last_extra <= room
            ),
            None,
        )
        if start is None:
            start = max(1, len(tail) - 4)
            while start > 1 and tail[start].kind != "study":
                start -= 1
            start = max(1, start - 2)
        moved = tail[start:]
        pages[-1] = [header, *tail[:start]]
        pages.append([header])
        first = moved[0]
        if first.group is not None and first.kind not in {"group", "blank"}:
            pages[-1].append(
                text_row("group", first.group, f"{first.group} (continued)", geo, True, bold=True)
            )
        pages[-1].extend(moved)
    return pages
