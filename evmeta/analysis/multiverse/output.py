"""Files of a multiverse run: ``multiverse.csv``, the specification curve (PDF/SVG/PNG),
``choice_influence.csv``, ``null_test.csv``, ``multiverse.html`` (the report section, also
renderable inside a report through ``multiverse.html.j2``) and ``multiverse_provenance.json``.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from evmeta.formatting import percent
from evmeta.sheets.export import write_csv

if TYPE_CHECKING:  # the run written, for the annotations only
    from evmeta.analysis.multiverse.run import MultiverseRun

RULE = (
    "Rule: for each crossed choice, the median estimate is computed for each of its values; the "
    "range of these medians (largest minus smallest) measures how far the choice moves the "
    "estimate, and eta^2 is the share of the variance of the estimates lying between its values. "
    "Choices are ranked by the range of medians within each effect measure used."
)
TEST_RULE = (
    "Under-the-null resampling (Simonsohn, Simmons & Nelson 2020): every specification's effect "
    "sizes are shifted by its pooled estimate, studies are drawn with replacement (the same draw "
    "for all specifications), all specifications are refitted and the curve's statistics "
    "recomputed; p = (1 + resampled curves at least as extreme) / (1 + resamples). The statistics "
    "are computed separately for each effect measure used (one block of rows per measure), as "
    "estimates of different measures are on different scales."
)


def _svg(path: Path | None) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>|<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    return re.sub(r"<svg ", '<svg style="max-width:100%;height:auto" ', text, count=1).strip()


def _table(frame: pd.DataFrame | None, digits: int = 3) -> str:
    if frame is None or frame.empty:
        return "<p><em>none</em></p>"
    return frame.to_html(
        index=False, float_format=lambda x: f"{x:.{digits}f}", na_rep="", border=0, escape=True
    )


def section_context(run: MultiverseRun) -> dict[str, Any]:
    """Context of ``multiverse.html.j2`` (the report hook: pass it as ``multiverse``)."""
    results = run.results
    skipped = results[results["status"] != "ok"]
    reasons = (
        skipped.assign(
            reason=skipped["reason"].str.replace(r"specification \d+", "specification #", regex=True)
        )
        .groupby(["status", "reason"], sort=True)
        .size()
        .reset_index(name="specifications")
    )
    svg = next((p for p in run.figures.get("specification_curve", []) if p.suffix == ".svg"), None)
    keys = [c for c in results.columns[1 : list(results.columns).index("k")]]
    return {
        "n_specs": len(results),
        "pct": percent(run.spec.frequentist.level),
        "choices": html.escape(", ".join(keys)),
        "sentences": run.sentences,
        "measures": run.summary.get("measures", []),
        "figure": _svg(svg),
        "rule": RULE,
        "influence": _table(run.influence),
        "test_rule": TEST_RULE,
        "null_test": _table(run.null_test, 4) if run.null_test is not None else "",
        "skipped": _table(reasons, 0),
    }


def render_section(run: MultiverseRun) -> str:
    """The report section as HTML (a fragment)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("evmeta.report", "templates"), autoescape=True)
    return env.get_template("multiverse.html.j2").render(multiverse=section_context(run))


def _page(run: MultiverseRun, fragment: str) -> str:
    title = html.escape(run.spec.analysis.title or run.spec.analysis.name)
    style = (
        "body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;font-size:14px}"
        "table{border-collapse:collapse;font-size:12px}td,th{padding:2px 6px;border-bottom:1px solid #ddd}"
        ".small{font-size:12px;color:#444}"
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}: multiverse</title>'
        f"<style>{style}</style></head><body><h1>{title}</h1>\n{fragment}\n</body></html>\n"
    )


def write_outputs(run: MultiverseRun, figures: bool = True) -> None:
    """Write every file of the run into ``run.output`` (paths appended to ``run.files``)."""
    out = run.output
    run.files.append(write_csv(run.results, out / "multiverse.csv"))
    run.files.append(write_csv(run.influence, out / "choice_influence.csv"))
    if run.null_test is not None:
        run.files.append(write_csv(run.null_test, out / "null_test.csv"))
    if figures and (run.results["status"] == "ok").any():
        from evmeta.plots import save_figure
        from evmeta.plots.specification_curve import specification_curve_plot

        figure = specification_curve_plot(run.results, width=run.spec.figures.width, level=run.spec.frequentist.level)
        formats = tuple(dict.fromkeys([*run.spec.figures.formats, "svg"]))
        run.figures["specification_curve"] = save_figure(figure, out / "specification_curve", formats)
        run.files.extend(run.figures["specification_curve"])
    page = out / "multiverse.html"
    page.write_text(_page(run, render_section(run)), encoding="utf-8")
    run.files.append(page)
    provenance = {**run.provenance, "summary": run.summary, "outputs": sorted(p.name for p in run.files)}
    path = out / "multiverse_provenance.json"
    path.write_text(json.dumps(provenance, indent=1, default=str) + "\n", encoding="utf-8")
    run.files.append(path)


__all__ = ["render_section", "section_context", "write_outputs"]
