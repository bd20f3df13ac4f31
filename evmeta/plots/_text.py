"""Text for figures: measured widths, word wrapping and labels that tell studies and arms
apart (numbers and p-values come from :mod:`evmeta.formatting`)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import pandas as pd

from evmeta.formatting import MINUS, format_p, minus, number, scientific, significant
from evmeta.plots._style import FONT_FAMILY

if TYPE_CHECKING:
    from matplotlib.backends.backend_agg import RendererAgg

#: The figures' text helpers; numbers and p-values are re-exported from evmeta.formatting.
__all__ = [
    "MINUS",
    "comparison_labels",
    "format_p",
    "minus",
    "number",
    "scientific",
    "significant",
    "study_labels",
    "text_width_pt",
    "wrap",
]


@lru_cache(maxsize=1)
def _renderer() -> RendererAgg:
    from matplotlib.backends.backend_agg import RendererAgg

    # 720 dpi: ten pixels a point (hinting rounds less). matplotlib leaves RendererAgg's
    # methods unannotated, hence the ignores here and in text_width_pt (unused-ignore: the
    # non-strict configuration does not report untyped calls).
    return RendererAgg(10, 10, 720)  # type: ignore[no-untyped-call, unused-ignore]


@lru_cache(maxsize=20000)
def text_width_pt(text: str, size: float, bold: bool = False) -> float:
    """Width of one line of ``text`` in points as matplotlib renders it (in :data:`FONT_FAMILY`)."""
    from matplotlib.font_manager import FontProperties

    prop = FontProperties(family=FONT_FAMILY, size=size, weight="bold" if bold else "normal")
    width, _, _ = _renderer().get_text_width_height_descent(  # type: ignore[no-untyped-call, unused-ignore]
        text, prop, ismath=False
    )
    return float(width) / 10 * 1.02  # 2% for hinting at low resolutions


def wrap(text: str, width_pt: float, size: float, bold: bool = False) -> list[str]:
    """Greedy word wrap of ``text`` into lines no wider than ``width_pt``; words longer than
    a line are broken, after a hyphen where they have one (never truncated)."""
    lines: list[str] = []
    width_pt += 0.5  # measured widths are exact; allow for rounding
    for paragraph in str(text).split("\n"):
        current = ""
        for word in paragraph.split(" "):
            candidate = f"{current} {word}" if current else word
            if text_width_pt(candidate, size, bold=bold) <= width_pt:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = word
            while text_width_pt(current, size, bold=bold) > width_pt and len(current) > 1:
                cut = len(current) - 1
                while cut > 1 and text_width_pt(current[:cut], size, bold=bold) > width_pt:
                    cut -= 1
                hyphen = current.rfind("-", 1, cut)
                cut = hyphen + 1 if hyphen > 0 else cut  # 'ischaemia-' / 'reperfusion', not 'reperfusi' / 'on'
                lines.append(current[:cut])
                current = current[cut:]
        lines.append(current)
    return lines or [""]


def _suffixes(n: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [letters[i] if i < 26 else f"{letters[i // 26 - 1]}{letters[i % 26]}" for i in range(n)]


def study_labels(frame: pd.DataFrame) -> pd.Series:
    """'Author Year' per row, with a/b suffixes where different studies share author and year."""
    base = frame["first_author"].astype(str) + " " + pd.to_numeric(frame["year"]).astype("Int64").astype(str)
    studies = pd.DataFrame({"study_id": frame["study_id"].astype(str), "base": base}).drop_duplicates(
        "study_id"
    )
    suffix = {}
    for _, part in studies.groupby("base", sort=False):
        ids = sorted(part["study_id"])
        for sid, letter in zip(ids, _suffixes(len(ids)) if len(ids) > 1 else [""], strict=True):
            suffix[sid] = letter
    return base + frame["study_id"].astype(str).map(suffix).fillna("")


def comparison_labels(frame: pd.DataFrame) -> pd.Series:
    """A label per comparison that no other row shares.

    The study part gets a/b suffixes (:func:`study_labels`); the rest of the comparison's own
    label (arm, experiment) is kept; rows still alike are told apart by outcome, time point
    and, last, a running number.
    """
    labels = frame["label"].astype(str) if "label" in frame.columns else None
    if {"first_author", "year", "study_id"} <= set(frame.columns):
        study = study_labels(frame)
        base = (
            frame["first_author"].astype(str) + " " + pd.to_numeric(frame["year"]).astype("Int64").astype(str)
        )
        if labels is None:
            labels = study
        else:
            rest = [
                lab[len(b) :] if lab.startswith(b) else f", {lab}"
                for lab, b in zip(labels, base, strict=True)
            ]
            labels = study + pd.Series(rest, index=frame.index)
    if labels is None:
        labels = pd.Series([f"Comparison {i + 1}" for i in range(len(frame))], index=frame.index)
    for column in ("outcome", "timepoint_label"):
        if column in frame.columns and labels.duplicated(keep=False).any():
            clash = labels.duplicated(keep=False)
            labels = labels.where(~clash, labels + ", " + frame[column].astype(str))
    if labels.duplicated(keep=False).any():
        number_ = labels.groupby(labels).cumcount() + 1
        clash = labels.duplicated(keep=False)
        labels = labels.where(~clash, labels + " #" + number_.astype(str))
    return labels
