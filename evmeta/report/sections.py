"""Figure captions and optional report sections.

A stage that wants its own section in ``report.html`` (a specification curve, a bias
panel, ...) appends a :class:`ReportSection` to ``run.report_sections``; the section is
rendered from its own partial template (``evmeta/report/templates/partials/<name>.html.j2``,
or any template a ``loader`` finds) with its own context, and placed, in order, after the
sensitivity analyses. Inside a partial: ``context`` (the section's dict), ``figures``
(inline SVG pages of the run's figures by name), ``table(frame, digits=2)`` (a page-fitting
HTML table whose interval headings are at the analysis' level; pass ``level=`` and
``interval="CrI"`` for a Bayesian table), ``caption(name)`` and ``pct`` (the analysis'
confidence level as printed, "95%").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from evmeta.formatting import percent

if TYPE_CHECKING:  # jinja2 is imported when a report is rendered
    import jinja2

    from evmeta.report.run_view import ReportedRun

#: Figure captions by figure name; ``{pct}`` is the analysis' confidence level ("95%").
CAPTIONS = {
    "bias_panel": (
        "Publication bias. Left: funnel plot with the PET and PEESE lines of the model ensemble; middle: "
        "relative publication probability of non-significant results (step selection model, significant "
        "results = 1); right: model-averaged effect with its component models (posterior probability as size)."
    ),
    "isolation_evidence": (
        "Isolation methods against ultracentrifugation (UC): within-study estimates (studies that compared "
        "methods on the same animals' model) and between-study estimates, each with its {pct} confidence interval."
    ),
    "forest": (
        "Forest plot. Squares: comparisons (area proportional to the weight in the overall model) with {pct} "
        "confidence intervals; diamonds: pooled estimates per subgroup and overall; bar: {pct} prediction interval. "
        "Weights are given in percent of the overall model and within the subgroup. Long plots continue over pages."
    ),
    "moderators": (
        "Moderator (orchard) plot. Points: comparisons (size by precision); per subgroup the pooled estimate with "
        "its {pct} confidence interval (thick) and prediction interval (thin)."
    ),
    "dose_response": (
        "Dose-response. Comparisons with a dose in the units of the axis (log scale; bubble area proportional "
        "to weight); line and band: meta-regression on log dose with its {pct} confidence band, or with a "
        "[dose_response] spec the fitted curve with its {pct} confidence (dark) and prediction (light) bands and "
        "human-equivalent doses per species on the top axes."
    ),
    "posterior": (
        "Bayesian model: prior (dashed) and posterior (filled) density of every model term - the intercept "
        "(reference level), each moderator coefficient and each between-group standard deviation (τ)."
    ),
    "funnel": (
        "Contour-enhanced funnel plot. Shading: regions where a comparison would be significant at p < 0.01, "
        "0.01-0.05 and 0.05-0.10 (two-sided, against zero); vertical line: pooled estimate; open circles: "
        "comparisons imputed by trim-and-fill with the adjusted estimate (dotted)."
    ),
    "risk_of_bias": (
        "Risk of bias (SYRCLE). Top: share of studies judged at low, unclear or high risk per item; bottom: "
        "judgement per study and item. Studies sharing author and year are told apart by a/b."
    ),
}


def captions(level: float) -> dict[str, str]:
    """:data:`CAPTIONS` with the analysis' confidence ``level`` written in (0.9 -> "90%")."""
    return {name: text.replace("{pct}", percent(level)) for name, text in CAPTIONS.items()}


@dataclass
class ReportSection:
    """An optional section of the report, rendered from its own partial template.

    ``id`` is the anchor of the section's heading (``report.html#<id>``, linked from the
    contents): unique in the page, so never a figure's name (``dose-response-curve``, not
    the figure's ``dose-response``).
    """

    id: str
    title: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)


def _environment(loader: Any = None) -> jinja2.Environment:
    import jinja2

    loader = loader or jinja2.PackageLoader("evmeta.report", "templates")
    return jinja2.Environment(loader=loader, autoescape=True)


def render_sections(run: ReportedRun, loader: Any = None) -> list[dict[str, str]]:
    """Render ``run.report_sections`` (if any) to ``[{"id", "title", "html"}]``."""
    from evmeta.report.svg import figure_svgs
    from evmeta.report.tables import html_table

    sections = list(getattr(run, "report_sections", None) or [])
    if not sections:
        return []
    env = _environment(loader)
    level = run.spec.frequentist.level
    words = captions(level)
    out = []
    for section in sections:
        template = env.get_template(section.template)
        figures = {name: figure_svgs(run.figures.get(name, [])) for name in section.figures}
        body = template.render(
            context=section.context,
            figures=figures,
            table=partial(html_table, level=level),
            caption=lambda name: words.get(name, ""),
            pct=percent(level),
        )
        out.append({"id": section.id, "title": section.title, "html": body})
    return out
