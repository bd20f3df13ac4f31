"""The closest typed id to one that names no row: "did you mean 'SMITH2021'?"."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rapidfuzz import fuzz, process

#: Minimum similarity (0-100, rapidfuzz WRatio) for an id to be offered as "did you mean".
ID_SUGGESTION_SCORE = 80.0


def did_you_mean(value: Any, ids: Iterable[Any]) -> str:
    """``"; did you mean 'SMITH2021'?"`` for the id closest to ``value``, or ``""``.

    Case and separators are ignored first (``smith-2021`` for ``SMITH2021``); otherwise the
    closest id by rapidfuzz's weighted ratio, when it scores at least
    :data:`ID_SUGGESTION_SCORE`.
    """
    candidates = [str(i) for i in ids if i is not None and str(i) != str(value)]
    if not candidates:
        return ""
    squeeze = lambda s: re.sub(r"[^0-9a-z]", "", s.casefold())  # noqa: E731
    same = [c for c in candidates if squeeze(c) == squeeze(str(value))]
    if same:
        return f"; did you mean {same[0]!r}?"
    best = process.extractOne(str(value), candidates, scorer=fuzz.WRatio, score_cutoff=ID_SUGGESTION_SCORE)
    return f"; did you mean {best[0]!r}?" if best else ""


__all__ = ["ID_SUGGESTION_SCORE", "did_you_mean"]
