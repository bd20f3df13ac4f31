"""The what-changed report of a living review: one refit compared with the one before.

``write_what_changed`` writes, into the refit's report folder, ``what_changed.md`` (new and
removed studies and comparisons; the pooled estimate, its confidence and prediction
intervals, tau² and I² before and after; every subgroup and moderator term before and after;
the cumulative meta-analysis by search date; the PRISMA 2020 counts for updated reviews; the
project state it was made from), ``cumulative.csv``, ``prisma_update.csv`` and the updated
flow diagram ``prisma_update.svg`` / ``.pdf``. Every number is one the refit or the project
computed; the report only compares and words them.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import pandas as pd

from evmeta._paths import check_output
from evmeta.formatting import percent

FILES = ("what_changed.md", "cumulative.csv", "prisma_update.csv", "prisma_update.svg", "prisma_update.pdf")


def _f(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _interval(low: Any, high: Any) -> str:
    return f"[{_f(low)}, {_f(high)}]" if low is not None and high is not None else "–"


def _listing(items: list[str], limit: int = 30) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "") if items else "none"


def _studies_section(now: dict[str, Any], before: dict[str, Any] | None) -> list[str]:
    if before is None:
        return [
            "## Studies and comparisons", "",
            f"First analysis of this spec in the project: {len(now['studies'])} studies, "
            f"{len(now['comparisons'])} comparisons; nothing earlier to compare with.", "",
        ]  # fmt: skip
    out = ["## New studies and comparisons", ""]
    for label, key in [("Studies", "studies"), ("Comparisons", "comparisons")]:
        old, new = set(before[key]), set(now[key])
        out.append(
            f"- {label}: {len(old)} before, {len(new)} now; new ({len(new - old)}): {_listing(sorted(new - old))}; "
            f"no longer analysed ({len(old - new)}): {_listing(sorted(old - new))}."
        )
    return [*out, ""]


def _level(summary: dict[str, Any] | None) -> float:
    """The level of a summary's intervals (summaries written before it was recorded: 0.95,
    the only level those runs could have had from a default spec)."""
    return float(((summary or {}).get("pooled") or {}).get("level") or 0.95)


def _pooled_section(now: dict[str, Any], before: dict[str, Any] | None) -> list[str]:
    p, q = now["pooled"], (before or {}).get("pooled")
    measure = p.get("measure") or "effect"
    shown = percent(_level(now))
    out = [f"## Pooled estimate ({measure}, {p.get('method')}, {p.get('test')})", ""]
    if before is not None and _level(before) != _level(now):
        out += [f"The previous refit's intervals are at {percent(_level(before))}, these at {shown}.", ""]
    out += ["| | before | now | change |", "|---|---|---|---|"]
    for label, key in [("estimate", "estimate"), ("tau²", "tau2"), ("I² (%)", "i2"), ("k", "k")]:
        old = None if q is None else q.get(key)
        digits = 0 if key == "k" else 2
        change = "–" if old is None or p.get(key) is None else f"{p[key] - old:+.{digits}f}"
        out.append(f"| {label} | {_f(old, digits)} | {_f(p.get(key), digits)} | {change} |")
    for label, low, high in [(f"{shown} CI", "ci_low", "ci_high"), (f"{shown} PI", "pi_low", "pi_high")]:
        old = "–" if q is None else _interval(q.get(low), q.get(high))
        out.append(f"| {label} | {old} | {_interval(p.get(low), p.get(high))} | |")
    if q is not None:
        moved = p["estimate"] - q["estimate"]
        inside = q["ci_low"] <= p["estimate"] <= q["ci_high"]
        out += [
            "",
            f"The pooled {measure} moved by {moved:+.2f} (from {_f(q['estimate'])} to {_f(p['estimate'])}); "
            f"the new estimate lies {'inside' if inside else 'outside'} the previous {percent(_level(before))} confidence interval.",
        ]
    return [*out, ""]


def _terms_section(now: dict[str, Any], before: dict[str, Any] | None) -> list[str]:
    old = {(t["model"], t["term"]): t for t in (before or {}).get("terms", [])}
    out = ["## Subgroups and moderators", ""]
    if not now["terms"] and not old:
        return [*out, "The spec fits no subgroup analysis or meta-regression.", ""]
    then_ci, now_ci = percent(_level(before) if before else _level(now)), percent(_level(now))
    out += [f"| model | term | before [{then_ci} CI] (k) | now [{now_ci} CI] (k) | change |", "|---|---|---|---|---|"]
    seen = set()
    for term in now["terms"]:
        key = (term["model"], term["term"])
        seen.add(key)
        prior = old.get(key)
        then = (
            "new"
            if prior is None
            else f"{_f(prior['estimate'])} {_interval(prior['ci_low'], prior['ci_high'])} ({prior['k']})"
        )
        change = "–" if prior is None else f"{term['estimate'] - prior['estimate']:+.2f}"
        out.append(f"| {key[0]} | {key[1]} | {then} | {_f(term['estimate'])} "
                   f"{_interval(term['ci_low'], term['ci_high'])} ({term['k']}) | {change} |")  # fmt: skip
    out += [f"| {m} | {t} | {_f(v['estimate'])} ({v['k']}) | no longer estimated | |" for (m, t), v in old.items()
            if (m, t) not in seen]  # fmt: skip
    return [*out, ""]


def _cumulative_section(cumulative: pd.DataFrame, level: float) -> list[str]:
    out = ["## Cumulative meta-analysis by search date", "", "Each row pools the comparisons of the studies "
           "first found by a search on or before that date (cumulative.csv).", ""]  # fmt: skip
    out += [
        f"| searched on | studies | k | estimate | {percent(level)} CI | {percent(level)} PI | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in cumulative.to_dict("records"):
        note = row["note"] if isinstance(row["note"], str) else ""
        out.append(f"| {row['searched_on']} | {row['studies']} | {row['k']} | {_f(row['estimate'])} | "
                   f"{_interval(row['ci_low'], row['ci_high'])} | {_interval(row['pi_low'], row['pi_high'])} | {note} |")  # fmt: skip
    unmatched = cumulative.attrs.get("unmatched", 0)
    if unmatched:
        out += ["", f"{unmatched} comparison(s) belong to studies matched to no search record (by record_id or "
                "DOI) and are left out of these rows."]  # fmt: skip
    return [*out, ""]


def _prisma_section(prisma: Any) -> list[str]:
    new = prisma.new
    out = ["## PRISMA 2020 flow (updated review)", "", "![PRISMA 2020 flow diagram](prisma_update.svg)", ""]
    out += [
        f"- Previous version: {prisma.previous_studies} studies, {prisma.previous_reports} reports.",
        f"- New searches: {new.identified} records ({', '.join(f'{k} {v}' for k, v in new.databases.items()) or 'none'}); "
        f"{new.duplicates_removed} duplicates removed (of held or of each other); {new.removed_other} removed for other "
        f"reasons; {new.screened} screened, {new.excluded_screening} excluded; {new.sought} reports sought, "
        f"{new.not_retrieved} not retrieved, {new.assessed} assessed, {new.excluded_full_text} excluded at full text.",
        f"- New studies: {new.studies_included} ({new.reports_included} reports); total: {prisma.total_studies} "
        f"studies, {prisma.total_reports} reports.",
    ]  # fmt: skip
    out += [f"- Note: {note}" for note in prisma.notes]
    return [*out, ""]


def _provenance_section(state: dict[str, Any], version: int) -> list[str]:
    from evmeta._version import __version__

    counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in state["counts"].items())
    return [
        "## Provenance", "",
        f"Made {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by evmeta {__version__} from project "
        f"{state['project_uuid']} (database {state['database']}, schema revision {state['revision']}), "
        f"extraction version {version}. Project state: {counts}.", "",
    ]  # fmt: skip


def write_what_changed(
    out: Path,
    name: str,
    version: int,
    now: dict[str, Any],
    before: dict[str, Any] | None,
    cumulative: pd.DataFrame,
    prisma: Any,
    state: dict[str, Any],
    *,
    force: bool = False,
) -> list[Path]:
    """Write the what-changed report of one refit into ``out`` (see the module docstring);
    return the files, ``what_changed.md`` first. Existing files are replaced only with ``force``."""
    from evmeta.plots import save_figure
    from evmeta.plots.prisma_update import prisma_update_diagram
    from evmeta.sheets.export import write_csv

    paths = [check_output(out / file, force=force) for file in FILES]
    lines = [f"# What changed: {name}, extraction version {version}", ""]
    lines += _studies_section(now, before) + _pooled_section(now, before) + _terms_section(now, before)
    lines += _cumulative_section(cumulative, _level(now)) + _prisma_section(prisma)
    if now.get("unmatched_studies"):
        lines += [f"Studies matched to no search record: {_listing(now['unmatched_studies'])}.", ""]
    lines += _provenance_section(state, version)
    paths[0].write_text("\n".join(lines), encoding="utf-8")
    write_csv(cumulative, paths[1])
    write_csv(prisma.to_frame(), paths[2])
    save_figure(prisma_update_diagram(prisma), out / "prisma_update", formats=("svg", "pdf"))
    return paths


__all__ = ["write_what_changed"]
