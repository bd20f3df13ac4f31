"""Forest plot: one row per comparison, subgroup and overall diamonds, prediction interval.

The figure is laid out on one canvas measured in inches (x) and rows (y), so annotation
columns, the effect panel and the right-hand numbers stay aligned at any number of rows
(5 to 300 and more): the height grows with the rows, the width is a journal width.
Statistics come from the result objects, subgroup fits included (the caller passes
``subgroups=subgroup_analysis(...)``); the plot only draws, at the result's level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evmeta.errors import FigureError, PlotError
from evmeta.plots._style import FigurePages, figure_of, journal_style, width_inches
from evmeta.plots._text import comparison_labels, format_p, number
from evmeta.plots.forest.draw import MEASURE_LABELS, draw_pages  # noqa: F401 (re-exported)
from evmeta.schema.vocabulary import display_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TESTS = {"knha": "Knapp-Hartung", "z": "z test", "t": "t test"}
#: Level of the intervals when comparisons are drawn without a fitted result (no level of its own).
ROWS_LEVEL = 0.95


@dataclass
class _Pooled:
    label: str
    estimate: float
    ci_low: float
    ci_high: float
    note: str = ""
    pi_low: float = np.nan
    pi_high: float = np.nan


@dataclass
class _Group:
    name: str | None
    rows: pd.DataFrame
    pooled: _Pooled | None = None
    #: The heading as printed (``name`` is the subgroup's value, which the fits are keyed by).
    title: str | None = None


@dataclass
class _ForestData:
    groups: list[_Group]
    overall: _Pooled | None
    measure: str | None
    footer: list[str] = field(default_factory=list)
    weights_known: bool = True
    shrinkage: bool = False
    #: Level of every interval drawn (the result's), and what the intervals are called.
    level: float = 0.95
    interval: str = "CI"
    #: Words for the treated arms: the caption "favours <treatment>" and the short form of
    #: "n <treated>/ctrl" and the split-control footnote (forest_plot's keywords).
    treatment: str = "EVs"
    treated: str = "EV"


def percent(level: float) -> str:
    """0.9 -> '90%', 0.975 -> '97.5%'."""
    return f"{level * 100:.4g}%"


def _rows(
    frame: pd.DataFrame, yi: np.ndarray, vi: np.ndarray, weights: np.ndarray | None, level: float
) -> pd.DataFrame:
    from evmeta.models.base.inference import critical_value

    rows = frame.copy()
    half = critical_value(level, None) * np.sqrt(vi)  # each comparison's own Wald interval
    rows["_est"], rows["_lo"], rows["_hi"] = yi, yi - half, yi + half
    rows["_weight"] = np.nan if weights is None else weights  # percent of the overall model
    rows["_weight_group"] = np.nan  # percent within the subgroup
    rows["_label"] = comparison_labels(rows).to_numpy()
    return rows


def _test_name(fit: Any) -> str:
    if getattr(fit, "is_robust", False):
        return "CR2"
    return TESTS.get(getattr(fit, "test", ""), str(getattr(fit, "test", "")))


def _heterogeneity_text(fit: Any) -> str:
    if hasattr(fit, "sigma2"):
        parts = ", ".join(f"σ²[{n}] = {number(s)}" for n, s in zip(fit.random, fit.sigma2, strict=True))
        return f"Heterogeneity: {parts}; I² = {fit.i2:.0f}%; k = {fit.k}"
    return f"Heterogeneity: τ² = {number(fit.tau2)}, I² = {fit.i2:.0f}%, k = {fit.k}"


def _pooled_from_frequentist(fit: Any, label: str) -> _Pooled:
    return _Pooled(
        label, fit.estimate, fit.ci_low, fit.ci_high, _heterogeneity_text(fit), fit.pi_low, fit.pi_high
    )


def _pooled_from_bayes(fit: Any, label: str, level: float) -> _Pooled:
    table = fit.summary(level).table
    row = table.loc["intercept"]
    prediction = fit.predict(level=level).iloc[0]
    taus = table.loc[fit.tau_names, "estimate"]
    note = (
        "Heterogeneity: "
        + ", ".join(f"{name.replace('tau', 'τ')} = {number(value)}" for name, value in taus.items())
        + f"; k = {fit.k}"
    )
    return _Pooled(
        label,
        row["estimate"],
        row["ci_low"],
        row["ci_high"],
        note,
        prediction["pi_low"],
        prediction["pi_high"],
    )


def _collect(obj: Any, by: str | None, subgroups: Any, shrinkage: bool) -> _ForestData:
    from evmeta.models.bayes.result import BayesResult
    from evmeta.models.frequentist.meta import MetaResult
    from evmeta.models.frequentist.multilevel import MultilevelResult

    table = getattr(obj, "table", None)
    if isinstance(obj, pd.DataFrame) or isinstance(table, pd.DataFrame):
        frame = table if isinstance(table, pd.DataFrame) else obj
        rows = _rows(frame, frame["yi"].to_numpy(float), frame["vi"].to_numpy(float), None, ROWS_LEVEL)
        measure = frame["measure"].iloc[0] if "measure" in frame.columns and len(frame) else None
        footer = [f"Intervals: {percent(ROWS_LEVEL)} confidence intervals of each comparison (no pooling)."]
        return _ForestData(_groups(rows, by, None), None, measure, footer, weights_known=False)
    if isinstance(obj, BayesResult):
        return _collect_bayes(obj, by, subgroups, shrinkage)
    if isinstance(obj, (MetaResult, MultilevelResult)):
        return _collect_frequentist(obj, by, subgroups)
    raise PlotError(
        f"forest_plot takes a result (meta_analysis, multilevel, Bayesian) or comparisons, got {type(obj).__name__}"
    )


def _collect_bayes(obj: Any, by: str | None, subgroups: Any, shrinkage: bool) -> _ForestData:
    from evmeta.models.bayes.result import PROB

    level = PROB
    rows = _rows(obj.model.frame, obj.model.yi, obj.model.vi, None, level)
    if shrinkage:
        shrunk = obj.study_estimates(level)
        rows["_shrunk"], rows["_shrunk_lo"], rows["_shrunk_hi"] = (
            shrunk["estimate"],
            shrunk["ci_low"],
            shrunk["ci_high"],
        )
    overall = (
        _pooled_from_bayes(obj, f"Overall (Bayesian, posterior mean [{percent(level)} CrI])", level)
        if obj.model.intercept_only
        else None
    )
    footer = [
        f"Bayesian model ({obj.method_used}); comparisons: {percent(level)} confidence intervals; "
        f"diamonds: posterior of the mean effect, {percent(level)} credible intervals"
    ]
    groups = _groups(rows, by, _subgroup_fits(subgroups, by))
    return _ForestData(
        groups,
        overall,
        obj.measure,
        footer,
        weights_known=False,
        shrinkage=shrinkage,
        level=level,
        interval="CrI",
    )


def _collect_frequentist(obj: Any, by: str | None, subgroups: Any) -> _ForestData:
    from evmeta.models.frequentist.multilevel import MultilevelResult

    level = obj.level
    rows = _rows(obj.model.frame, obj.model.yi, obj.model.vi, obj.weights, level)
    kind = "multilevel" if isinstance(obj, MultilevelResult) else "random effects"
    overall = (
        _pooled_from_frequentist(obj, f"Overall ({kind}, {obj.method}, {_test_name(obj)})")
        if obj.model.intercept_only
        else None
    )
    by = getattr(subgroups, "by", by)
    groups = _groups(rows, by, _subgroup_fits(subgroups, by), weights=True)
    footer = [
        f"Intervals: {percent(level)} confidence intervals (comparisons: normal approximation; "
        f"diamonds: {_test_name(obj)})"
        + (f"; {percent(level)} prediction interval" if np.isfinite(obj.pi_low) else "")
        + "."
    ]
    if subgroups is not None and hasattr(subgroups, "q_between"):
        footer.append(
            f"Test for subgroup differences: Q = {subgroups.q_between:.2f}, df = {subgroups.q_between_df}, "
            f"{format_p(subgroups.q_between_pvalue)} (separate τ²); "
            f"{format_p(subgroups.q_between_common_pvalue)} (common τ²)"
        )
    return _ForestData(groups, overall, obj.measure, footer, level=level)


def _subgroup_fits(subgroups: Any, by: str | None) -> dict[Any, Any] | None:
    """Subgroup level -> fitted result, from a SubgroupResult (``.fits``) or a mapping."""
    if subgroups is None:
        return None
    fits = getattr(subgroups, "fits", subgroups)
    if not isinstance(fits, dict):
        raise PlotError(
            "subgroups= takes the result of subgroup_analysis(...) or a dict of subgroup level -> fitted "
            f"result, got {type(subgroups).__name__}"
        )
    if by is None:
        raise PlotError("subgroups= given as a dict needs by= (the column whose levels it names)")
    return fits


def _groups(
    rows: pd.DataFrame, by: str | None, fits: dict[Any, Any] | None, weights: bool = False
) -> list[_Group]:
    """One group per level of ``by`` with the diamond of its fit in ``fits`` (fitted by the
    caller; a level without a fit gets no diamond). ``weights``: the fit's weights are the
    within-subgroup weights."""
    if not by:
        return [_Group(None, rows)]
    if by not in rows.columns:
        raise PlotError(f"by={by!r} is not a column of the fitted rows")
    groups = []
    for name, part in rows.groupby(by, sort=True, observed=True):
        fit = (fits or {}).get(name)
        pooled = None
        if fit is not None:
            if fit.k != len(part):
                raise PlotError(
                    f"subgroups: the fit for {by} = {name!r} has k = {fit.k} but the plot has {len(part)} "
                    "rows in that subgroup; fit the subgroups on the same comparisons as the plotted result"
                )
            pooled = _pooled_subtotal(fit)
            if weights and getattr(fit, "weights", None) is not None:
                part = part.assign(_weight_group=np.asarray(fit.weights, float))
        elif weights and fits is not None and len(part) == 1:
            part = part.assign(_weight_group=100.0)
        groups.append(_Group(str(name), part, pooled, display_label(name, by)))
    return groups


def _pooled_subtotal(fit: Any) -> _Pooled:
    from evmeta.models.bayes.result import PROB, BayesResult

    if isinstance(fit, BayesResult):
        return _pooled_from_bayes(fit, "Subtotal", PROB)
    return _pooled_from_frequentist(fit, "Subtotal")


def forest_plot(
    result_or_comparisons: Any,
    *,
    by: str | None = None,
    subgroups: Any = None,
    sort_by: str | None = None,
    columns: tuple[str, ...] = ("label", "n", "dose", "isolation_method"),
    show_weights: bool = True,
    show_prediction: bool = True,
    shrinkage: bool = False,
    width: str | float = "double",
    title: str | None = None,
    max_height_mm: float | None = 240.0,
    ax: Axes | None = None,
    layout: str = "evmeta",
    rob: bool | list[str] = False,
    dose: bool = False,
    treatment: str | None = None,
    treated: str | None = None,
) -> Figure | FigurePages:
    """Draw a forest plot and return the matplotlib Figure (or its pages).

    Parameters
    ----------
    result_or_comparisons : MetaResult, MultilevelResult, BayesResult, Comparisons or DataFrame
        Frequentist results give weights and diamonds; multilevel results their own
        (marginal-precision) weights; Bayesian results posterior means with credible
        intervals; comparisons alone give the rows without pooling. Every interval, header
        and footnote uses the result's ``level``.
    by : str, optional
        Column to group rows by (a heading per level; no diamonds unless ``subgroups``
        gives the fits).
    subgroups : SubgroupResult or dict, optional
        The subgroup fits to draw, fitted by the caller on the plotted comparisons:
        ``subgroup_analysis(table, "isolation_method", ...)`` (its ``by`` groups the rows; its
        test for subgroup differences is printed), or a dict of level -> fitted result with
        ``by``. The plot fits nothing itself.
    sort_by : str, optional
        Column to order rows by within groups (e.g. ``"yi"``, ``"year"``, ``"_weight"``).
    columns : tuple of str
        Annotation columns on the left: ``label``, ``n`` (treated/control animals; a control
        split among the arms sharing it, ``n_control`` differing from
        ``n_control_reported``, is marked ``*`` and shown to one decimal), ``dose``, or any
        column of the comparisons (``isolation_method``, ``species``, ...).
    show_weights, show_prediction : bool
        Weight column (percent) and prediction-interval row.
    shrinkage : bool
        Bayesian results: draw the shrunken estimate of each comparison under its observed one.
    width : {"double", "single"} or float
        180 mm, 85 mm, or a width in mm.
    max_height_mm : float or None
        Tallest page (mm; 240 fits a journal page). A longer plot is split over pages,
        returned as :class:`~evmeta.plots.FigurePages` (a list of Figures that
        :func:`save_figure` writes as one multi-page PDF and numbered PNG/SVG files); a
        subgroup broken by a page continues on the next under '(continued)'. ``None``: one
        page however tall.
    ax : matplotlib Axes, optional
        Draw into this Axes (its figure is returned; no page split); otherwise a new Figure
        is sized to the rows.
    layout : {"evmeta", "revman", "jama"}
        ``"evmeta"`` (default): the layout above. ``"revman"``: the RevMan 5 look
        (Experimental/Control Mean SD Total, Weight, "IV, Random, 95% CI", green squares,
        RevMan's heterogeneity and overall-effect lines); ``"jama"``: the JAMA look. See
        :mod:`evmeta.plots.forest.journal` and docs/forest_layouts.md. A journal layout is
        drawn on one page (``max_height_mm`` does not split it).
    rob : bool or list of str
        Journal layouts: risk-of-bias dots per comparison from the table's SYRCLE ``rob_*``
        columns (True: every item; a list: those items), with a legend of the items.
    dose : bool
        Journal layouts: a dose column (harmonized per-kg dose, ``1.3 × 10¹⁰ particles/kg``);
        the default layout has its ``dose`` column in ``columns``.
    treatment : str, optional
        What the treated arms were given, for the caption right of no effect: "favours
        MSC-EVs →" (default layout; "favours EVs →" when not given) and "Favours
        MSC-EVs" under a journal layout (RevMan's "Favours [experimental]" when not given,
        with "Favours [control]" on the left).
    treated : str, optional
        Short form for the animals column header "n treated/ctrl" and the split-control
        footnote (default "EV").

    Raises
    ------
    FigureError
        When a treated arm contributes several outcomes or time points (the rows would not be
        independent and look alike): choose one with ``build_comparisons(outcome=...,
        timepoint=...)``, or ask for one panel per outcome with ``by="outcome"``.

    Notes
    -----
    Labels wrap, never truncate, and are unique: 'Author Year' gets a/b suffixes when two
    studies share it, and the arm (and experiment) where a study has several. Weights are
    percent of the overall model and, with ``by``, percent within the subgroup. Footnotes
    (the split-control mark, the dose abbreviations p and CE, the weights) are printed on
    every page whose rows need them.
    """
    from evmeta.plots.forest.journal import LAYOUTS

    if layout not in LAYOUTS:
        raise PlotError(f"layout={layout!r} is not a forest layout; layouts: {', '.join(LAYOUTS)}")
    if layout == "evmeta" and rob:
        raise PlotError('rob= draws risk-of-bias dots in the journal layouts: layout="revman" or "jama"')
    by = getattr(subgroups, "by", by)
    _check_one_outcome(result_or_comparisons, by)
    data = _collect(result_or_comparisons, by, subgroups, shrinkage)
    data.treatment = treatment or data.treatment
    data.treated = treated or data.treated
    explicit_words = treatment is not None
    if by in PANEL_COLUMNS:
        data.overall = None  # never pool different outcomes or time points
    columns = tuple(c for c in columns if c != by)  # the subgroup heading already says it
    if sort_by:
        for group in data.groups:
            if sort_by not in group.rows.columns:
                raise PlotError(
                    f"sort_by={sort_by!r} is not a column; columns: {', '.join(map(str, group.rows.columns))}"
                )
            group.rows = group.rows.sort_values(sort_by, kind="stable")
    width_in = width_inches(width) if ax is None else figure_of(ax).get_figwidth()
    if layout != "evmeta":
        return _journal(
            result_or_comparisons, data, subgroups, by, layout, rob, dose, show_weights, width_in, title, ax,
            treatment if explicit_words else None,
        )  # fmt: skip
    with journal_style():
        return draw_pages(
            data,
            columns,
            show_weights and data.weights_known,
            show_prediction,
            title,
            width_in,
            None if max_height_mm is None else max_height_mm / 25.4,
            ax,
        )


def _journal(
    result: Any,
    data: _ForestData,
    subgroups: Any,
    by: str | None,
    layout: str,
    rob: bool | list[str],
    dose: bool,
    show_weights: bool,
    width_in: float,
    title: str | None,
    ax: Axes | None,
    treatment: str | None,
) -> Figure:
    from evmeta.plots.forest.journal import JournalForest

    fits = _subgroup_fits(subgroups, by) if subgroups is not None else None
    with journal_style():
        plot = JournalForest(
            result,
            data,
            subgroups,
            fits,
            layout,
            rob=rob,
            dose=dose,
            show_weights=show_weights and data.weights_known,
            width_in=width_in,
            title=title,
            treatment=treatment,
        )
        return plot.draw(ax)


PANEL_COLUMNS = ("outcome", "timepoint_label", "timepoint")


def _frame_of(obj: Any) -> pd.DataFrame | None:
    if isinstance(obj, pd.DataFrame):
        return obj
    table = getattr(obj, "table", None)
    if isinstance(table, pd.DataFrame) and "yi" in table.columns:
        return table
    model = getattr(obj, "model", None)
    return getattr(model, "frame", None)


def _check_one_outcome(obj: Any, by: str | None) -> None:
    """Refuse rows where one treated arm appears with several outcomes or time points."""
    frame = _frame_of(obj)
    if frame is None or "arm_id" not in frame.columns or by in PANEL_COLUMNS:
        return
    for column, how in [("outcome", "outcome=[...]"), ("timepoint_label", "timepoint='last'")]:
        if column not in frame.columns:
            continue
        per_arm = frame.groupby("arm_id", observed=True)[column].nunique()
        if (per_arm > 1).any():
            values = sorted(frame[column].dropna().astype(str).unique())
            shown = ", ".join(values[:6]) + (", ..." if len(values) > 6 else "")
            raise FigureError(
                f"forest_plot: {int((per_arm > 1).sum())} treated arm(s) contribute several {column.replace('_label', '')}s "
                f"({len(values)}: {shown}); their rows are not independent and would look alike. "
                f"Choose one per arm with build_comparisons(..., {how}), or draw one panel per "
                f"{column.replace('_label', '')} with forest_plot(..., by={column!r})."
            )
