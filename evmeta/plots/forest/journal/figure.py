"""Drawing a journal forest plot (:class:`JournalForest`): the header, one line after another
(squares sized by weight, diamonds, risk-of-bias dots), the axis with its favours captions,
the footnotes and the risk-of-bias legend. y runs downwards; one Axes spans the figure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evmeta.plots._style import figure_of, new_figure
from evmeta.plots._text import minus, text_width_pt, wrap
from evmeta.plots.forest.journal.columns import _Column, fit_columns
from evmeta.plots.forest.journal.lines import _Line, journal_lines
from evmeta.plots.forest.journal.rob_dots import draw_rob_dots
from evmeta.plots.forest.journal.setup import PAD, PT, JournalSetup

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


#: RevMan's colours: green squares, black diamonds and lines.
REVMAN_SQUARE = "#3C9B3C"


#: JAMA: squares, intervals and diamonds in one dark colour.
JAMA_DARK = "#1F3A5F"


class JournalForest(JournalSetup):
    """One journal-layout forest plot: collects the lines, sizes the columns, draws."""

    def draw(self, ax: Axes | None = None) -> Figure:
        lines = journal_lines(self)
        cols, label_w, panel, rob_w = fit_columns(self, lines)
        font, small = self.font, self.font - 0.5
        for line in lines:
            if line.kind in {"note"}:
                line.label = wrap(line.label[0], (self.width - 0.15) / PT, small)
            elif line.kind not in {"blank"}:
                width = (label_w - PAD - (0.14 if line.indent else 0)) / PT
                line.label = wrap(
                    line.label[0],
                    width if line.kind != "group" else (self.width - 0.15) / PT,
                    font,
                    bold=line.bold,
                )
            n_lines = max([len(line.label)] + [cell.count("\n") + 1 for cell in line.cells.values()])
            line.height = self.line_height(n_lines) * (0.5 if line.kind == "blank" else 1)
            if line.kind == "note":
                line.height = (len(line.label) * 1.2 * small + 0.3 * small) * PT
        legend = [text for _, _, text in self.rob]
        foot = [
            part
            for text in [*self.data.footer, *self.notes]
            for part in wrap(minus(text), (self.width - 0.15) / PT, small)
        ]
        top = 0.06 + (self.line_height(1) * 1.5 if self.title else 0)
        header_h = self.line_height(3 if self.layout == "revman" else 2)
        axis_h = self.axis_lines() * self.line_height(1) + 0.12
        notes_h = (len(foot) + (len(legend) + 1 if legend else 0)) * 1.25 * small * PT + 0.1
        body_h = sum(line.height for line in lines)
        height = top + header_h + body_h + axis_h + notes_h
        if ax is None:
            figure = new_figure(self.width * 25.4, height)
            axes = figure.add_axes((0, 0, 1, 1))
        else:
            axes, figure = ax, figure_of(ax)
        axes.set_axis_off()
        axes.set_xlim(0, self.width)
        axes.set_ylim(height, 0)
        self.axes, self.panel = axes, panel
        if self.title:
            axes.text(0.05, top / 2 + 0.03, self.title, fontsize=font + 1.5, fontweight="bold", va="center")
        self._header(cols, panel, rob_w, top, header_h)
        y = top + header_h
        plotted: list[tuple[float, float]] = []
        for line in lines:
            centre = y + line.height / 2
            self._line(line, cols, centre)
            if line.kind in {"study", "pooled", "overall", "heading"}:
                plotted.append((y, y + line.height))
            y += line.height
        if plotted:
            axes.plot(
                [self.x_of(0.0)] * 2,
                [plotted[0][0], plotted[-1][1]],
                color="0.0" if self.layout == "revman" else "0.35",
                lw=0.6,
                zorder=1,
            )
        y = self._axis(y + 0.04)
        for text in foot:
            axes.text(0.05, y, minus(text), fontsize=small, va="top", color="0.25")
            y += 1.25 * small * PT
        if legend:
            axes.text(0.05, y, "Risk of bias legend", fontsize=small, va="top", fontweight="bold")
            y += 1.25 * small * PT
            for text in legend:
                axes.text(0.05, y, text, fontsize=small, va="top", gid="rob-legend")
                y += 1.25 * small * PT
        return figure

    def x_of(self, value: float) -> float:
        lo, hi = self.limits
        return float(
            self.panel[0] + (np.clip(value, lo, hi) - lo) / (hi - lo) * (self.panel[1] - self.panel[0])
        )

    def _header(
        self, cols: list[_Column], panel: tuple[float, float], rob_w: float, top: float, header_h: float
    ) -> None:
        axes, font = self.axes, self.font
        bold: dict[str, Any] = {"fontsize": font, "fontweight": "bold", "va": "bottom", "linespacing": 1.1}
        base = top + header_h - 0.04
        label = "Study or Subgroup" if self.layout == "revman" else "Source"
        axes.text(0.05, base, label, ha="left", **bold)
        spans: dict[str, list[float]] = {}
        for col in cols:
            axes.text(col.x - PAD / 2, base, col.header, ha="right", **bold)
            if col.super_header:
                spans.setdefault(col.super_header, []).extend([col.x - col.width, col.x])
        for name, xs in spans.items():
            axes.text((min(xs) + max(xs)) / 2, base - self.line_height(1), name, ha="center", **bold)
        if self.layout == "revman":
            head = f"{self.measure_name()}\n{self.method_caption()}"
            axes.text((panel[0] + panel[1]) / 2, base, head, ha="center", **bold)
        for i, (_, letter, _) in enumerate(self.rob):
            axes.text(panel[1] + 0.1 + 0.15 * i + 0.075, base, letter, ha="center", **bold)
        if self.rob:
            axes.text(self.width - 0.05, base - self.line_height(1), "Risk of Bias", ha="right", **bold)
        rule = "0.0" if self.layout == "revman" else "0.3"
        axes.plot([0.05, self.width - 0.05], [top + header_h] * 2, color=rule, lw=0.6)

    def _line(self, line: _Line, cols: list[_Column], y: float) -> None:
        axes, font = self.axes, self.font
        style: dict[str, Any] = {"fontsize": font, "va": "center"}  # Text keywords
        if line.kind == "blank":
            return
        if line.kind == "note":
            axes.text(
                0.05,
                y,
                minus("\n".join(line.label)),
                fontsize=font - 0.5,
                va="center",
                linespacing=1.2,
                gid="stat-line",
            )
            return
        weight = "bold" if line.bold else "normal"
        x = 0.05 + (0.14 if line.indent else 0)
        axes.text(x, y, "\n".join(line.label), fontweight=weight, linespacing=1.2, **style)
        for col in cols:
            text = line.cells.get(col.key, "")
            if text:
                axes.text(col.x - PAD / 2, y, text, ha="right", fontweight=weight, **style)
        if line.kind == "study":
            self._square(line.record, y)
            draw_rob_dots(self.axes, self.rob, line.record, self.panel[1], y, self.font)
        elif line.kind in {"pooled", "overall"}:
            self._diamond(line.pooled, y)

    def _colours(self) -> tuple[str, str]:
        """(square, line/diamond) colours of the layout."""
        return (REVMAN_SQUARE, "black") if self.layout == "revman" else (JAMA_DARK, JAMA_DARK)

    def _square(self, record: pd.Series, y: float) -> None:
        square, line = self._colours()
        lo, hi = self.limits
        self.axes.plot(
            [self.x_of(record["_lo"]), self.x_of(record["_hi"])], [y, y], color=line, lw=0.7, zorder=2
        )
        for end, marker, edge in [(record["_lo"], "<", lo), (record["_hi"], ">", hi)]:
            if (end < edge) if marker == "<" else (end > edge):
                self.axes.plot(self.x_of(edge), y, marker=marker, color=line, ms=3, zorder=3)
        weights = self.rows["_weight"]
        wmax = float(np.nanmax(weights)) if weights.notna().any() else np.nan
        w = record.get("_weight", np.nan)
        size = 2.0 + 5.0 * np.sqrt(w / wmax) if np.isfinite(wmax) and pd.notna(w) else 3.5
        if lo <= record["_est"] <= hi:
            self.axes.plot(
                self.x_of(record["_est"]),
                y,
                marker="s",
                ms=size,
                color=square,
                mec="none",
                zorder=3,
                gid="square",
            )

    def _diamond(self, pooled: Any, y: float) -> None:
        from matplotlib.patches import Polygon

        _, colour = self._colours()
        half = 0.36 * self.line_height(1)
        corners = [
            (self.x_of(pooled.ci_low), y),
            (self.x_of(pooled.estimate), y - half),
            (self.x_of(pooled.ci_high), y),
            (self.x_of(pooled.estimate), y + half),
        ]
        self.axes.add_patch(
            Polygon(corners, closed=True, facecolor=colour, edgecolor=colour, zorder=3, gid="diamond")
        )

    def _axis(self, y: float) -> float:
        import matplotlib.ticker as ticker

        axes, font = self.axes, self.font
        lo, hi = self.limits
        line = self.line_height(1)
        axes.plot([self.panel[0], self.panel[1]], [y, y], color="0.0", lw=0.6)
        narrow = self.panel[1] - self.panel[0] < 2.0
        for tick in ticker.MaxNLocator(nbins=4 if narrow else 6).tick_values(lo, hi):
            if lo <= tick <= hi:
                axes.plot([self.x_of(tick)] * 2, [y, y + 0.04], color="0.0", lw=0.6)
                axes.text(
                    self.x_of(tick),
                    y + 0.04 + line / 2,
                    minus(f"{tick:g}"),
                    ha="center",
                    fontsize=font,
                    va="center",
                )
        left_text, right_text = self.favours
        left_w = text_width_pt(left_text, font, bold=True) * PT + 0.1
        right_w = text_width_pt(right_text, font, bold=True) * PT + 0.1
        zero = float(np.clip(self.x_of(0.0), left_w, self.width - right_w))
        y_caption = y + 0.04 + 1.5 * line
        small = font - 0.5
        weight = "bold" if self.layout == "jama" else "normal"
        axes.text(
            zero - 0.05,
            y_caption,
            left_text,
            ha="right",
            va="center",
            fontsize=small,
            fontweight=weight,
            gid="favours",
        )
        axes.text(
            zero + 0.05,
            y_caption,
            right_text,
            ha="left",
            va="center",
            fontsize=small,
            fontweight=weight,
            gid="favours",
        )
        if self.layout == "jama":
            axes.text(
                (self.panel[0] + self.panel[1]) / 2,
                y_caption + line,
                f"{self.measure_name()} ({self.level * 100:.4g}% {self.data.interval})",
                ha="center",
                va="center",
                fontsize=small,
            )
        return y + 0.12 + self.axis_lines() * line

    def axis_lines(self) -> float:
        # ticks, favours captions, and (JAMA) the measure under them
        return 3.1 if self.layout == "jama" else 2.1
