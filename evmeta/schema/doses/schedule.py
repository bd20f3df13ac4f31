"""Schedules as papers print them: 'daily for 7 days', 'every 2 weeks, four times', '/day'.

:func:`read_schedule` reads the number of administrations and the days between them from
a dose text already normalized by :func:`evmeta.schema.doses.text.normalize` (casefolded,
ASCII dashes). Rules, in the order they are tried:

* interval: 'twice a day' (0.5 d), 'three times weekly' (7/3 d), 'every other day' (2 d),
  'every 2 weeks' / 'once per 2 days' (14 d / 2 d), 'once a day' / 'per week', 'daily' /
  'weekly' / 'monthly' (1 / 7 / 30 d; a month is 30 days), 'biweekly' (14 d, with a note
  that it can also mean twice a week), '/day' after the amount;
* count: 'four times', '3 doses', 'two intravenous injections', 'twice', 'single', 'once';
* duration: 'for 7 days', 'over 2 weeks', 'for 7 consecutive days'.

When the count is not printed, it is the duration divided by the interval, if that is a
whole number ('once per 2 days for 2 weeks' = 7 doses); otherwise it stays unknown, with a
note.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from functools import cache

from evmeta.data import load_toml
from evmeta.schema.doses.tokens import DoseTextError

__all__ = ["MAX_DOSES", "Schedule", "read_schedule"]

#: Most administrations one schedule may give (``arms.n_doses`` has the same maximum). More
#: is a misprint or hostile text, and the count multiplies into the cumulative doses.
MAX_DOSES = 1000

#: Tolerance for "duration / interval is a whole number" (relative).
WHOLE_NUMBER_TOLERANCE = 1e-6
_ADVERB_DAYS = {"daily": 1.0, "weekly": 7.0, "monthly": 30.0, "fortnightly": 14.0}
_ABBREVIATION_DAYS = {"qod": 2.0, "qd": 1.0, "bid": 0.5}


@dataclass(frozen=True)
class Schedule:
    """Number of administrations, days between them, total duration (days) and notes."""

    n_doses: int | None = None
    interval_days: float | None = None
    duration_days: float | None = None
    notes: tuple[str, ...] = ()


@cache
def _patterns() -> dict[str, re.Pattern]:
    table = load_toml("dose_units.toml")
    numbers = sorted(table["number_words"], key=len, reverse=True)
    units = sorted(table["time_days"], key=len, reverse=True)
    alternatives = "[0-9]+(?:\\.[0-9]+)?|" + "|".join(numbers)
    num = rf"(?P<n>{alternatives})"
    count_num = r"(?P<n>[0-9]+|" + "|".join(w for w in numbers if w not in {"a", "an"}) + r")"
    unit = r"(?P<u>" + "|".join(re.escape(u) for u in units) + r")\b"
    frequency = r"(?!\s?(?:a|an|per|each|every|daily|weekly|monthly|/)\b)"
    times = rf"(?:(?P<w>twice|thrice)|(?P<k>{alternatives})\s?(?:times|x))"
    listed = r"[0-9]+(?:\s?(?:,|and|&)\s?(?:and\s)?[0-9]+)+"
    return {
        "times_per": re.compile(rf"\b{times}\s?(?:(?:a|an|per|each|every)\s|/\s?){unit}"),
        "interval_of": re.compile(
            rf"\b(?:intervals?\sof\s{num}\s?-?{unit}"
            rf"|{num.replace('<n>', '<n2>')}\s?-?\s?{unit.replace('<u>', '<u2>')}\s?-?\s?intervals?\b)"
        ),
        "abbreviation": re.compile(r"\b(?P<a>q\.?o\.?d|q\.?d|b\.?i\.?d)\b\.?"),
        "times_adverb": re.compile(rf"\b{times}\s(?P<a>daily|weekly|monthly)\b"),
        "every_other": re.compile(rf"\b(?:every\s(?:other|second|alternate)|alternate)\s{unit}"),
        "every_n": re.compile(rf"\b(?:once\s)?(?:every|per|each|q)\s?{num}\s?-?{unit}"),
        "every_unit": re.compile(rf"(?<!for\s)(?<!over\s)\b(?:once\s)?(?:every|a|an|per|each)\s{unit}"),
        "adverb": re.compile(r"\b(?P<a>daily|weekly|monthly|fortnightly|bi-?weekly)\b"),
        "slash": re.compile(rf"/\s?{unit}"),
        "count": re.compile(
            rf"\b{count_num}\s(?:[a-z.-]+\s)?(?:times|doses|injections|administrations|treatments|applications)\b{frequency}"
        ),
        "times_x": re.compile(
            r"\b(?:daily|weekly|monthly|doses?|injections?|ug|mcg|mg|ng|particles|evs|exosomes|cells)"
            r"\s?x\s?(?P<n>[0-9]{1,2})\b(?![\^(*.])"
        ),
        "day_list": re.compile(
            rf"\b(?:(?P<u1>days?|weeks?)\s(?P<list>{listed})\b"
            rf"|(?P<list2>{listed})\s?(?P<u2>days?|weeks?|h|hours?)\s(?:after|post|following)"
            rf"|(?:at|on)\s(?P<list3>{listed})\s?(?P<u3>days?|weeks?|h|hours?)\b)"
        ),
        "twice": re.compile(rf"\b(?P<w>twice|thrice)\b{frequency}"),
        "once": re.compile(rf"\b(?:single|once|one-time)\b{frequency}(?!\s?[0-9])"),
        "duration": re.compile(
            rf"\b(?:for|over|during)\s(?:a\s(?:total|period)\sof\s)?{num}\s(?P<c>consecutive\s|successive\s)?{unit}"
        ),
    }


def _number(word: str) -> float | None:
    table = load_toml("dose_units.toml")["number_words"]
    if word in {"twice"}:
        return 2.0
    if word in {"thrice"}:
        return 3.0
    if word in table:
        return float(table[word])
    try:
        return float(word)
    except ValueError:
        return None


def _days(unit: str) -> float:
    return float(load_toml("dose_units.toml")["time_days"][unit])


def _interval(s: str) -> tuple[float | None, list[str]]:
    p = _patterns()
    for name in ("times_per", "times_adverb"):
        match = p[name].search(s)
        if match and (k := _number(match.group("w") or match.group("k"))):
            period = _days(match.group("u")) if name == "times_per" else _ADVERB_DAYS[match.group("a")]
            if k >= 1:
                return period / k, []
    if (match := p["interval_of"].search(s)) and (n := _number(match.group("n") or match.group("n2"))):
        return n * _days(match.group("u") or match.group("u2")), []
    if match := p["every_other"].search(s):
        return 2.0 * _days(match.group("u")), []
    if (match := p["every_n"].search(s)) and (n := _number(match.group("n"))):
        return n * _days(match.group("u")), []
    if match := p["every_unit"].search(s):
        return _days(match.group("u")), []
    if match := p["adverb"].search(s):
        adverb = match.group("a")
        if adverb.replace("-", "") == "biweekly":
            return 14.0, ["read 'biweekly' as every 14 days (it can also mean twice a week): check the paper"]
        return _ADVERB_DAYS[adverb], []
    if match := p["slash"].search(s):
        return _days(match.group("u")), []
    if match := p["abbreviation"].search(s):
        return _ABBREVIATION_DAYS[match.group("a").replace(".", "")], []
    if days := _day_list(s):
        steps = {b - a for a, b in itertools.pairwise(days[0])}
        if len(steps) == 1 and steps != {0}:
            return steps.pop() * days[1], []
    return None, []


def _day_list(s: str) -> tuple[list[float], float] | None:
    """'on days 1, 3 and 5' or '1, 3 and 5 days after injury': the days and the unit (days)."""
    match = _patterns()["day_list"].search(s)
    if not match:
        return None
    listed = match.group("list") or match.group("list2") or match.group("list3")
    unit = match.group("u1") or match.group("u2") or match.group("u3")
    return [float(x) for x in re.findall(r"[0-9]+", listed)], _days(unit)


def _count(s: str) -> int | None:
    p = _patterns()
    if (match := p["count"].search(s)) and (n := _number(match.group("n"))) and n.is_integer():
        return int(n)
    if match := p["twice"].search(s):
        return 2 if match.group("w") == "twice" else 3
    if match := p["times_x"].search(s):
        return int(match.group("n"))
    if days := _day_list(s):
        return len(days[0])
    if p["once"].search(s):
        return 1
    return None


def read_schedule(s: str, *, interval_days: float | None = None, text: str | None = None) -> Schedule:
    """Schedule printed in a normalized dose text.

    Parameters
    ----------
    s : str
        Dose text after :func:`evmeta.schema.doses.text.normalize`.
    interval_days : float, optional
        Interval already read from the amount's denominator ('100 ug/kg/day').
    text : str, optional
        The text as printed, for error messages (default ``s``).

    Returns
    -------
    Schedule

    Raises
    ------
    DoseTextError
        ``too_many_doses`` when the schedule gives more than :data:`MAX_DOSES`
        administrations; ``overflow`` when its duration is too large to compute with.
    """
    notes: list[str] = []
    if interval_days is None:
        interval_days, notes = _interval(s)
    if interval_days is not None and not 0 < interval_days < math.inf:
        interval_days = None  # 'every 0 days' is no schedule
    n_doses = _count(s)
    if n_doses is not None and n_doses < 1:
        n_doses = None
    duration = None
    match = _patterns()["duration"].search(s)
    if match and (n := _number(match.group("n"))) and n > 0:
        duration = n * _days(match.group("u"))
        if not math.isfinite(duration):
            raise DoseTextError(
                s if text is None else text, "overflow", f"the duration {match.group(0)!r} is too large"
            )
        if match.group("c") and interval_days is None:  # 'for 3 consecutive days': one a day
            interval_days = _days(match.group("u"))
    if interval_days and duration:
        ratio = duration / interval_days
        whole = round(ratio)
        if abs(ratio - whole) <= WHOLE_NUMBER_TOLERANCE * max(1.0, ratio) and whole >= 1:
            if n_doses is None:
                n_doses = whole
            elif n_doses != whole:
                notes.append(
                    f"{n_doses} doses printed, but the duration and interval give {whole}: kept {n_doses}"
                )
        elif n_doses is None:
            notes.append(
                f"{duration:g} days is not a whole number of {interval_days:g}-day intervals: number of doses unknown"
            )
    if n_doses is not None and n_doses > MAX_DOSES:
        raise DoseTextError(
            s if text is None else text,
            "too_many_doses",
            f"the schedule gives {n_doses:,} administrations; at most {MAX_DOSES:,} are read "
            "(check the count, the interval and the duration)",
        )
    return Schedule(n_doses, interval_days, duration, tuple(notes))
