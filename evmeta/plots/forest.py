"""Forest plot: one row per comparison, subgroup and overall diamonds, prediction interval.

The figure is laid out on one canvas measured in inches (x) and rows (y), so annotation
columns, the effect panel and the right-hand numbers stay aligned at any number of rows
(5 to 300 and more): the height grows with the rows, the width is a journal width.
Statistics come from the result objects (subgroup fits are delegated to
:func:`evmeta.subgroup_analysis` and friends); the plot only draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evmeta.errors import ModelError, PlotError
from evmeta.plots._style import BASE_FONT_PT, PALETTE, journal_style, new_figure, width_inches

ROW_IN = 11.5 / 72  # one row: 11.5 pt at a 7 pt font
CHAR_IN = 0.58 * BASE_FONT_PT / 72  # average character width (DejaVu Sans)
MONO_IN = 0.62 * BASE_FONT_PT / 72  # character width of DejaVu Sans Mono
MEASURE_LABELS = {
    "SMD": "Standardized mean difference (Hedges' g)",
    "MD": "Mean difference",
    "ROM": "Log ratio of means",
    "NMD": "Normalized mean difference (%)",
    "OR": "Log odds ratio",
    "RR": "Log risk ratio",
    "RD": "Risk difference",
}
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


@dataclass
class _ForestData:
    groups: list[_Group]
    overall: _Pooled | None
    measure: str | None
    footer: list[str] = field(default_factory=list)
    weights_known: bool = True
    shrinkage: bool = False


def _rows(frame: pd.DataFrame, yi: np.ndarray, vi: np.ndarray, weights: np.ndarray | None) -> pd.DataFrame:
    rows = frame.copy()
    rows["_est"], rows["_lo"], rows["_hi"] = yi, yi - 1.959964 * np.sqrt(vi), yi + 1.959964 * np.sqrt(vi)
    rows["_weight"] = np.nan if weights is None else weights
    rows["_position"] = np.arange(len(rows))  # row of the fit's stored inputs, for subgroup refits
    if "label" not in rows.columns:
        rows["label"] = [f"Comparison {i + 1}" for i in range(len(rows))]
    return rows


def _heterogeneity_text(fit: Any) -> str:
    if hasattr(fit, "sigma2"):
        parts = ", ".join(f"sigma²[{n}] = {s:.2f}" for n, s in zip(fit.random, fit.sigma2, strict=True))
        return f"Heterogeneity: {parts}; I² = {fit.i2:.0f}%; k = {fit.k}"
    return f"Heterogeneity: tau² = {fit.tau2:.2f}, I² = {fit.i2:.0f}%, k = {fit.k}"


def _pooled_from_frequentist(fit: Any, label: str) -> _Pooled:
    return _Pooled(
        label, fit.estimate, fit.ci_low, fit.ci_high, _heterogeneity_text(fit), fit.pi_low, fit.pi_high
    )


def _pooled_from_bayes(fit: Any, label: str) -> _Pooled:
    table = fit.summary().table
    row = table.loc["intercept"]
    prediction = fit.predict().iloc[0]
    taus = table.loc[fit.tau_names, "estimate"]
    note = (
        "Heterogeneity: "
        + ", ".join(f"{name} = {value:.2f}" for name, value in taus.items())
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


def _collect(obj: Any, by: str | None, shrinkage: bool) -> _ForestData:
    from evmeta.models.bayes.result import BayesResult
    from evmeta.models.frequentist.meta import MetaResult
    from evmeta.models.frequentist.multilevel import MultilevelResult

    table = getattr(obj, "table", None)
    if isinstance(obj, pd.DataFrame) or isinstance(table, pd.DataFrame):
        frame = table if isinstance(table, pd.DataFrame) else obj
        rows = _rows(frame, frame["yi"].to_numpy(float), frame["vi"].to_numpy(float), None)
        measure = frame["measure"].iloc[0] if "measure" in frame.columns and len(frame) else None
        groups = (
            [_Group(name, part) for name, part in rows.groupby(by, sort=True)] if by else [_Group(None, rows)]
        )
        return _ForestData(groups, None, measure, weights_known=False)
    if isinstance(obj, BayesResult):
        frame = obj.model.frame
        rows = _rows(frame, obj.model.yi, obj.model.vi, None)
        if shrinkage:
            shrunk = obj.study_estimates()
            rows["_shrunk"], rows["_shrunk_lo"], rows["_shrunk_hi"] = (
                shrunk["mean"],
                shrunk["lower"],
                shrunk["upper"],
            )
        overall = (
            _pooled_from_bayes(obj, "Overall (Bayesian, posterior mean [95% CrI])")
            if obj.model.intercept_only
            else None
        )
        groups = _split_groups(
            rows, by, lambda subset: _pooled_from_bayes(_refit_bayes(obj, subset), "Subtotal")
        )
        footer = [
            f"Bayesian model ({obj.method_used}); intervals: 95% credible; diamonds: posterior of the mean effect"
        ]
        return _ForestData(groups, overall, obj.measure, footer, weights_known=False, shrinkage=shrinkage)
    if isinstance(obj, MultilevelResult):
        rows = _rows(obj.model.frame, obj.model.yi, obj.model.vi, obj.weights)
        overall = (
            _pooled_from_frequentist(obj, f"Overall (multilevel, {obj.method})")
            if obj.model.intercept_only
            else None
        )
        groups = _split_groups(
            rows, by, lambda subset: _pooled_from_frequentist(_refit_multilevel(obj, subset), "Subtotal")
        )
        return _ForestData(groups, overall, obj.measure)
    if isinstance(obj, MetaResult):
        rows = _rows(obj.model.frame, obj.model.yi, obj.model.vi, obj.weights)
        overall = (
            _pooled_from_frequentist(obj, f"Overall (random effects, {obj.method})")
            if obj.model.intercept_only
            else None
        )
        footer = []
        groups = [_Group(None, rows)]
        if by:
            from evmeta.models.frequentist.subgroup import subgroup_analysis

            stored = obj.data.assign(yi=obj.yi, vi=obj.vi)  # the stored inputs, not the frame's columns
            result = subgroup_analysis(stored, by, method=obj.method, test=obj.test, level=obj.level)
            groups = []
            for name, part in rows.groupby(by, sort=True):
                fit = result.fits.get(name)
                if fit is not None:
                    part = part.assign(_weight=fit.weights)
                groups.append(
                    _Group(name, part, _pooled_from_frequentist(fit, "Subtotal") if fit is not None else None)
                )
            footer.append(
                f"Test for subgroup differences: Q = {result.q_between:.2f}, df = {result.q_between_df}, "
                f"p = {result.q_between_pvalue:.3g} (separate tau²); "
                f"p = {result.q_between_common_pvalue:.3g} (common tau²)"
            )
        return _ForestData(groups, overall, obj.measure, footer)
    raise PlotError(
        f"forest_plot takes a result (meta_analysis, multilevel, Bayesian) or comparisons, got {type(obj).__name__}"
    )


def _split_groups(rows: pd.DataFrame, by: str | None, fit_group) -> list[_Group]:
    if not by:
        return [_Group(None, rows)]
    groups = []
    for name, part in rows.groupby(by, sort=True):
        pooled = None
        if len(part) >= 2:
            try:
                pooled = fit_group(part)
            except ModelError:
                pooled = None
        groups.append(_Group(name, part, pooled))
    return groups


def _stored_rows(fit: Any, subset: pd.DataFrame) -> np.ndarray:
    keep = np.zeros(fit.k, dtype=bool)
    keep[subset["_position"].to_numpy()] = True
    return keep


def _refit_multilevel(fit: Any, subset: pd.DataFrame):
    return fit.refit(rows=_stored_rows(fit, subset), mods=None)


def _refit_bayes(fit: Any, subset: pd.DataFrame):
    return fit.refit(rows=_stored_rows(fit, subset), mods=None)


def _cell(row: pd.Series, column: str) -> str:
    if column == "n":
        if "n_treat" in row and "n_control" in row and pd.notna(row["n_treat"]):
            return f"{row['n_treat']:g}/{row['n_control']:g}"
        return ""
    if column == "dose":
        return _dose_text(row)
    value = row.get(column, "")
    if isinstance(value, float) and np.isnan(value):
        return ""
    return str(value)


def _sci(value: float) -> str:
    exponent = int(np.floor(np.log10(abs(value))))
    return f"{value / 10**exponent:.1f}e{exponent}"


def _dose_text(row: pd.Series) -> str:
    """The harmonized per-kg dose, compactly: protein, else particles, else cell equivalents."""
    protein = row.get("dose_ug_protein_per_kg", np.nan)
    if pd.notna(protein):
        return f"{protein / 1000:.3g} mg/kg" if protein >= 1000 else f"{protein:.3g} µg/kg"
    for key, unit in [("dose_particles_per_kg", "p/kg"), ("dose_cell_equivalents_per_kg", "CE/kg")]:
        value = row.get(key, np.nan)
        if pd.notna(value) and value > 0:
            return f"{_sci(value)} {unit}"
    reported = row.get("dose_reported")
    return str(reported) if isinstance(reported, str) else "–"


def _fmt(est: float, lo: float, hi: float, compact: bool = False) -> str:
    if compact:
        return f"{est:.2f} [{lo:.2f}, {hi:.2f}]"
    return f"{est:5.2f} [{lo:5.2f}, {hi:5.2f}]"


def forest_plot(
    result_or_comparisons: Any,
    *,
    by: str | None = None,
    sort_by: str | None = None,
    columns: tuple[str, ...] = ("label", "n", "dose", "isolation_method"),
    show_weights: bool = True,
    show_prediction: bool = True,
    shrinkage: bool = False,
    width: str | float = "double",
    title: str | None = None,
    ax: Any = None,
):
    """Draw a forest plot and return the matplotlib Figure.

    Parameters
    ----------
    result_or_comparisons : MetaResult, MultilevelResult, BayesResult, Comparisons or DataFrame
        Frequentist results give weights and diamonds; multilevel results their own
        (marginal-precision) weights; Bayesian results posterior means with 95% credible
        intervals; comparisons alone give the rows without pooling.
    by : str, optional
        Column to group rows by, with a diamond and heterogeneity line per subgroup and the
        test for subgroup differences.
    sort_by : str, optional
        Column to order rows by within groups (e.g. ``"yi"``, ``"year"``, ``"_weight"``).
    columns : tuple of str
        Annotation columns on the left: ``label``, ``n`` (EV/control animals), ``dose``,
        or any column of the comparisons (``isolation_method``, ``species``, ...).
    show_weights, show_prediction : bool
        Weight column (percent) and prediction-interval row.
    shrinkage : bool
        Bayesian results: draw the shrunken estimate of each comparison under its observed one.
    width : {"double", "single"} or float
        180 mm, 85 mm, or a width in mm.
    ax : matplotlib Axes, optional
        Draw into this Axes (its figure is returned); otherwise a new Figure is sized to
        the rows.
    """
    data = _collect(result_or_comparisons, by, shrinkage)
    columns = tuple(c for c in columns if c != by)  # the subgroup heading already says it
    if sort_by:
        for group in data.groups:
            if sort_by not in group.rows.columns:
                raise PlotError(
                    f"sort_by={sort_by!r} is not a column; columns: {', '.join(map(str, group.rows.columns))}"
                )
            group.rows = group.rows.sort_values(sort_by, kind="stable")
    with journal_style():
        return _draw(data, columns, show_weights and data.weights_known, show_prediction, title, width, ax)


def _layout_rows(data: _ForestData, show_prediction: bool) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = [("header", None)]
    for group in data.groups:
        if group.name is not None:
            rows.append(("group", group.name))
        for _, row in group.rows.iterrows():
            rows.append(("study", row))
        if group.pooled is not None:
            rows.append(("pooled", group.pooled))
            rows.append(("note", group.pooled.note))
        if group.name is not None:
            rows.append(("blank", None))
    if data.overall is not None:
        rows.append(("overall", data.overall))
        if show_prediction and np.isfinite(data.overall.pi_low):
            rows.append(("prediction", data.overall))
        rows.append(("note", data.overall.note))
    for line in data.footer:
        rows.append(("note", line))
    return rows


def _limits(data: _ForestData) -> tuple[float, float]:
    all_rows = pd.concat([g.rows for g in data.groups])
    values = [0.0, *all_rows["_est"].to_numpy(float)]
    values += list(np.nanpercentile(all_rows["_lo"], [3])) + list(np.nanpercentile(all_rows["_hi"], [97]))
    pooled = [g.pooled for g in data.groups if g.pooled] + ([data.overall] if data.overall else [])
    for p in pooled:
        values += [p.ci_low, p.ci_high]
        if np.isfinite(p.pi_low):
            values += [p.pi_low, p.pi_high]
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    pad = 0.06 * (hi - lo if hi > lo else 1.0)
    return lo - pad, hi + pad


def _draw(
    data: _ForestData, columns, show_weights: bool, show_prediction: bool, title: str | None, width, ax
):
    import matplotlib.ticker as ticker
    from matplotlib.patches import Polygon

    layout = _layout_rows(data, show_prediction)
    n_rows = len(layout)
    all_rows = pd.concat([g.rows for g in data.groups])
    width_in = width_inches(width) if ax is None else ax.figure.get_figwidth()
    texts = {c: [_cell(r, c) for _, r in all_rows.iterrows()] for c in columns}
    label_cap = 40 if width_in > 5 else 22
    widths = {}
    for c in columns:
        longest = max([len(COLUMN_TITLES.get(c, c)) + 1] + [len(t) for t in texts[c]])
        widths[c] = (min(longest, label_cap if c == "label" else 18) + 2) * CHAR_IN
    narrow = width_in < 4.5
    right_cols = [("est", (19 if narrow else 23) * MONO_IN)] + (
        [("weight", 7 * CHAR_IN)] if show_weights else []
    )
    right_in = sum(w for _, w in right_cols)
    panel_min = (0.36 if narrow else 0.28) * width_in
    min_label = 14 * CHAR_IN

    def needed() -> float:
        fixed = sum(w for c, w in widths.items() if c != "label")
        return fixed + (min_label if "label" in widths else 0) + right_in + panel_min

    # Narrow figures: drop annotation columns from the right until the panel fits, then
    # let the label column give way (labels are truncated with "…").
    while needed() > width_in and any(c != "label" for c in widths):
        widths.pop([c for c in widths if c != "label"][-1])
    columns = tuple(c for c in columns if c in widths)
    if "label" in widths:
        fixed = sum(w for c, w in widths.items() if c != "label")
        widths["label"] = max(min_label, min(widths["label"], width_in - right_in - panel_min - fixed))
    left_in = sum(widths.values())
    panel = (left_in + 0.1, width_in - right_in - 0.1)
    bottom_rows = 3.8
    height_in = (n_rows + bottom_rows + (1.2 if title else 0)) * ROW_IN + 0.15
    if ax is None:
        figure = new_figure(width, height_in)
        ax = figure.add_axes((0, 0, 1, 1))
    figure = ax.figure
    ax.set_axis_off()
    ax.set_xlim(0, width_in)
    top = -1.4 if title else -0.6
    ax.set_ylim(n_rows + bottom_rows - 0.5, top)
    lo, hi = _limits(data)

    def x_of(value):
        return panel[0] + (np.clip(value, lo, hi) - lo) / (hi - lo) * (panel[1] - panel[0])

    max_weight = float(np.nanmax(all_rows["_weight"])) if all_rows["_weight"].notna().any() else np.nan
    font = {"fontsize": BASE_FONT_PT, "va": "center"}
    if title:
        ax.text(0.05, -1.0, title, fontsize=9, fontweight="bold", va="center")
    study_y = [y for y, (kind, _) in enumerate(layout) if kind == "study"]
    ax.plot(
        [x_of(0.0)] * 2,
        [min(study_y) - 0.5, max(y for y, (k, _) in enumerate(layout) if k != "note") + 0.5],
        color="0.45",
        lw=0.6,
        ls="-",
        zorder=1,
    )
    if data.overall is not None:
        ax.plot(
            [x_of(data.overall.estimate)] * 2,
            [min(study_y) - 0.5, n_rows - 0.5],
            color=PALETTE[3],
            lw=0.6,
            ls=(0, (2, 2)),
            zorder=1,
        )
    colour = PALETTE[0]
    for y, (kind, item) in enumerate(layout):
        if kind == "header":
            x = 0.05
            for c in columns:
                ax.text(x, y, COLUMN_TITLES.get(c, c), fontweight="bold", **font)
                x += widths[c]
            x = panel[1] + 0.1
            for name, w in right_cols:
                header = {"est": "Est. [95% CI]" if narrow else "Estimate [95% CI]", "weight": "Weight"}[name]
                ax.text(x + w, y, header, fontweight="bold", ha="right", **font)
                x += w
            ax.plot([0.05, width_in - 0.05], [y + 0.5] * 2, color="0.2", lw=0.6)
        elif kind == "group":
            ax.text(0.05, y, str(item), fontweight="bold", **font)
        elif kind == "study":
            row = item
            x = 0.05
            for c in columns:
                text = _cell(row, c)
                limit = max(int(widths[c] / CHAR_IN) - 2, 3)
                if len(text) > limit:
                    text = text[: limit - 1] + "…"
                ax.text(x, y, text, **font)
                x += widths[c]
            est, lo_ci, hi_ci = row["_est"], row["_lo"], row["_hi"]
            shrunk = "_shrunk" in row.index and pd.notna(row.get("_shrunk"))
            offset = -0.15 if shrunk else 0.0
            ax.plot([x_of(lo_ci), x_of(hi_ci)], [y + offset] * 2, color="0.15", lw=0.7, zorder=2)
            if lo_ci < lo:
                ax.plot(x_of(lo), y + offset, marker="<", color="0.15", ms=3, zorder=3)
            if hi_ci > hi:
                ax.plot(x_of(hi), y + offset, marker=">", color="0.15", ms=3, zorder=3)
            size = (
                4.5 * np.sqrt(row["_weight"] / max_weight) + 1.5
                if np.isfinite(max_weight) and pd.notna(row["_weight"])
                else 3.5
            )
            if lo <= est <= hi:
                ax.plot(x_of(est), y + offset, marker="s", ms=size, color=colour, mec="none", zorder=3)
            if shrunk:
                ax.plot(
                    [x_of(row["_shrunk_lo"]), x_of(row["_shrunk_hi"])],
                    [y + 0.2] * 2,
                    color=PALETTE[1],
                    lw=0.7,
                    zorder=2,
                )
                ax.plot(x_of(row["_shrunk"]), y + 0.2, marker="o", ms=2.8, color=PALETTE[1], zorder=3)
            x = panel[1] + 0.1
            ax.text(
                x + right_cols[0][1],
                y,
                _fmt(est, lo_ci, hi_ci, narrow),
                ha="right",
                family="DejaVu Sans Mono",
                **font,
            )
            if show_weights:
                weight = row["_weight"]
                ax.text(
                    x + right_cols[0][1] + right_cols[1][1],
                    y,
                    f"{weight:.1f}%" if pd.notna(weight) else "",
                    ha="right",
                    **font,
                )
        elif kind in {"pooled", "overall"}:
            pooled = item
            colour_d = PALETTE[3] if kind == "overall" else "0.3"
            diamond = Polygon(
                [
                    (x_of(pooled.ci_low), y),
                    (x_of(pooled.estimate), y - 0.38),
                    (x_of(pooled.ci_high), y),
                    (x_of(pooled.estimate), y + 0.38),
                ],
                closed=True,
                facecolor=colour_d,
                edgecolor=colour_d,
                zorder=3,
            )
            ax.add_patch(diamond)
            label = (
                pooled.label.split(" (")[0]
                if narrow or len(pooled.label) * CHAR_IN * 1.1 > left_in
                else pooled.label
            )
            ax.text(0.05, y, label, fontweight="bold" if kind == "overall" else "normal", **font)
            ax.text(
                panel[1] + 0.1 + right_cols[0][1],
                y,
                _fmt(pooled.estimate, pooled.ci_low, pooled.ci_high, narrow),
                ha="right",
                family="DejaVu Sans Mono",
                fontweight="bold" if kind == "overall" else "normal",
                **font,
            )
        elif kind == "prediction":
            pooled = item
            ax.plot(
                [x_of(pooled.pi_low), x_of(pooled.pi_high)],
                [y, y],
                color=PALETTE[3],
                lw=1.6,
                solid_capstyle="butt",
                zorder=2,
            )
            for end in (pooled.pi_low, pooled.pi_high):
                ax.plot([x_of(end)] * 2, [y - 0.25, y + 0.25], color=PALETTE[3], lw=0.8)
            ax.text(0.05, y, "Prediction" if narrow else "Prediction interval", style="italic", **font)
            interval = (
                f"[{pooled.pi_low:.2f}, {pooled.pi_high:.2f}]"
                if narrow
                else f"[{pooled.pi_low:5.2f}, {pooled.pi_high:5.2f}]"
            )
            ax.text(
                panel[1] + 0.1 + right_cols[0][1], y, interval, ha="right", family="DejaVu Sans Mono", **font
            )
        elif kind == "note" and item:
            ax.text(0.05, y, item, fontsize=BASE_FONT_PT - 0.5, style="italic", color="0.25", va="center")
    # The effect axis, drawn by hand under the panel.
    axis_y = n_rows - 0.2
    ax.plot([panel[0], panel[1]], [axis_y, axis_y], color="0.1", lw=0.6)
    locator = ticker.MaxNLocator(nbins=6 if not narrow else 4)
    for tick in locator.tick_values(lo, hi):
        if lo <= tick <= hi:
            ax.plot([x_of(tick)] * 2, [axis_y, axis_y + 0.25], color="0.1", lw=0.6)
            ax.text(x_of(tick), axis_y + 0.75, f"{tick:g}", ha="center", **font)
    measure = MEASURE_LABELS.get(data.measure or "", data.measure or "Effect size")
    ax.text((panel[0] + panel[1]) / 2, axis_y + 1.75, measure, ha="center", **font)
    left_caption, right_caption = "← favours control", "favours EVs →"
    small = (BASE_FONT_PT - 0.5) / BASE_FONT_PT
    zero = float(
        np.clip(
            x_of(0.0),
            0.1 + len(left_caption) * CHAR_IN * small,
            width_in - 0.1 - len(right_caption) * CHAR_IN * small,
        )
    )
    ax.text(zero - 0.06, axis_y + 2.7, left_caption, ha="right", fontsize=BASE_FONT_PT - 0.5, va="center")
    ax.text(zero + 0.06, axis_y + 2.7, right_caption, ha="left", fontsize=BASE_FONT_PT - 0.5, va="center")
    return figure
