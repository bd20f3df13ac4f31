"""The reviewer's own columns named under ``[moderators]``: read per row, then typed over
the imported arms (numeric, or categorical with levels differing only in case merged).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from evmeta.schema.wide_import.table_cells import _number, _raw_text, _text
from evmeta.sheets.reader import Cell

#: Moderator cells read as missing (other words, such as "Not reported" or "Unclear", are
#: levels of the moderator: a published subgroup often has them).
MODERATOR_MISSING = frozenset({"", "na", "n/a", "n.a.", "nan", "null", "#n/a"})


#: Words read as missing in a moderator whose other values are all numbers (then it is
#: numeric, with a note); in a text moderator they stay levels.
NOT_A_NUMBER_WORDS = frozenset({"not reported", "nr", "n.r.", "unclear", "unknown", "not stated", "?"})


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
