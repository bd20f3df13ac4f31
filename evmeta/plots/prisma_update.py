"""PRISMA 2020 flow diagram for updated reviews (databases and registers).

The template of Page et al. (2021) BMJ 372:n71, Figure 1 for updated reviews: a "Previous
studies" column (studies and reports included in the previous version of the review) beside
the flow of the new searches (records identified -> screened -> reports sought -> assessed
-> new studies included, each with its side box), and a box of the total studies and
reports that both flows lead to. Every number comes from an
:class:`evmeta.project.prisma.UpdatedPrisma`; the boxes, their wording and their text
fitting are those of :mod:`evmeta.plots.prisma`, this module only adds the two boxes and the
wider layout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from evmeta.plots._style import BASE_FONT_PT, journal_style, new_figure, width_inches
from evmeta.plots.prisma import (
    HEADER_FILL,
    MARGIN_IN,
    PAD_IN,
    PHASE_FILL,
    PHASE_WIDTH_IN,
    ROW_GAP_IN,
    Fit,
    _arrow,
    _Box,
    _boxes,
    _fit,
    _measure,
    _n,
    _rect,
    _text_box,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: One row of the new searches' flow: main box and its fit, side box (or None) and its fit.
UpdateRow = tuple[_Box, Fit, "_Box | None", "Fit | None"]

HEADER_NEW = "Identification of new studies via databases and registers"
HEADER_PREVIOUS = "Previous studies"
PREVIOUS_FILL = "#D9D9D9"


def _columns(width_in: float) -> dict[str, float]:
    """x positions and widths (inches): phase bar, previous column, main and side columns."""
    usable = width_in - 2 * MARGIN_IN - PHASE_WIDTH_IN - 0.1
    arrow = max(0.2, 0.06 * usable)
    previous = 0.22 * usable
    main = (usable - previous - 2 * arrow) * 0.47
    side = usable - previous - 2 * arrow - main
    x_prev = MARGIN_IN + PHASE_WIDTH_IN + 0.1
    x_main = x_prev + previous + arrow
    return {"phase": MARGIN_IN, "prev": x_prev, "prev_w": previous, "main": x_main, "main_w": main,
            "side": x_main + main + arrow, "side_w": side}  # fmt: skip


def _rows(updated: Any) -> list[tuple[_Box, _Box | None]]:
    rows = _boxes(updated.new)
    new = updated.new
    rows[-1] = (_Box(["New studies included in review", _n(new.studies_included),
                      "Reports of new included studies", _n(new.reports_included)]), None)  # fmt: skip
    total = _Box(["Total studies included in review", _n(updated.total_studies),
                  "Reports of total included studies", _n(updated.total_reports)])  # fmt: skip
    return [*rows, (total, None)]


def prisma_update_diagram(
    updated: Any, *, width: str | float = "double", fontsize: float | None = None
) -> Figure:
    """Draw the PRISMA 2020 flow diagram for an updated review.

    Parameters
    ----------
    updated : UpdatedPrisma
        From :func:`evmeta.project.prisma.updated_prisma`.
    width : "double", "single" or float
        Journal column width (180 mm, 85 mm) or a width in mm.
    fontsize : float, optional
        Points; default 7 pt (6 pt at single-column width).

    Returns
    -------
    matplotlib.figure.Figure
        Boxes are ``FancyBboxPatch`` artists with gid ``box``, arrows gid ``arrow``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    width_in = width_inches(width)
    fontsize = fontsize or (BASE_FONT_PT if width_in >= 5 else 6.0)
    previous = _Box(["Studies included in previous version of review", _n(updated.previous_studies),
                     "Reports of studies included in previous version of review",
                     _n(updated.previous_reports)])  # fmt: skip
    with journal_style():
        figure = new_figure(width, 4.0)
        # matplotlib leaves get_renderer unannotated (unused-ignore: the non-strict configuration).
        renderer = FigureCanvasAgg(figure).get_renderer()  # type: ignore[no-untyped-call, unused-ignore]
        cols = _columns(width_in)
        rows: list[UpdateRow] = []
        for main, side in _rows(updated):
            main_fit = _fit(figure, renderer, main, cols["main_w"], fontsize)
            side_fit = _fit(figure, renderer, side, cols["side_w"], fontsize) if side else None
            rows.append((main, main_fit, side, side_fit))
        prev_fit = _fit(figure, renderer, previous, cols["prev_w"], fontsize)
        header_w = cols["side"] + cols["side_w"] - cols["main"]
        headers = (_fit(figure, renderer, _Box([HEADER_NEW]), header_w, fontsize + 1, "bold"),
                   _fit(figure, renderer, _Box([HEADER_PREVIOUS]), cols["prev_w"], fontsize + 1, "bold"))  # fmt: skip
        heights = [max(r[1][1], r[3][1] if r[3] else 0) for r in rows]
        heights[0] = max(
            heights[0],
            prev_fit[1],
            _measure(figure, renderer, "Identification", fontsize + 1)[0] + 2 * PAD_IN,
        )
        header_h = max(h[1] for h in headers)
        total = 2 * MARGIN_IN + header_h + ROW_GAP_IN * len(rows) + sum(heights)
        figure.set_size_inches(width_in, total)
        _draw(figure, rows, heights, cols, headers, header_h, prev_fit, total, fontsize)
    return figure


def _header(
    ax: Axes, x: float, top: float, w: float, fit: Fit, h: float, fill: str, fontsize: float
) -> None:
    _rect(ax, x, top - h, w, h, fill)
    ax.text(x + w / 2, top - h / 2, fit[0], ha="center", va="center", multialignment="center",
            fontsize=fontsize + 1, fontweight="bold", linespacing=1.3)  # fmt: skip


def _draw(
    figure: Figure,
    rows: list[UpdateRow],
    heights: list[float],
    cols: dict[str, float],
    headers: tuple[Fit, Fit],
    header_h: float,
    prev_fit: Fit,
    total: float,
    fontsize: float,
) -> None:
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, figure.get_figwidth())
    ax.set_ylim(0, total)
    ax.set_axis_off()
    top = total - MARGIN_IN
    _header(ax, cols["main"], top, cols["side"] + cols["side_w"] - cols["main"], headers[0], header_h,
            HEADER_FILL, fontsize)  # fmt: skip
    _header(ax, cols["prev"], top, cols["prev_w"], headers[1], header_h, PREVIOUS_FILL, fontsize)
    y = top - header_h - ROW_GAP_IN
    centers: list[float] = []
    bottoms: list[float] = []
    tops: list[float] = []
    for (main, main_fit, side, side_fit), height in zip(rows, heights, strict=True):
        center = y - height / 2
        _text_box(ax, cols["main"], center, cols["main_w"], main_fit[1], main_fit[0], main.center, fontsize)
        if side is not None and side_fit is not None:  # a side box always has its fit
            _text_box(
                ax, cols["side"], center, cols["side_w"], side_fit[1], side_fit[0], side.center, fontsize
            )
            _arrow(ax, (cols["main"] + cols["main_w"], center), (cols["side"], center))
        centers.append(center)
        tops.append(center + main_fit[1] / 2)
        bottoms.append(center - main_fit[1] / 2)
        y -= height + ROW_GAP_IN
    x_mid = cols["main"] + cols["main_w"] / 2
    for index in range(len(rows) - 1):
        _arrow(ax, (x_mid, bottoms[index]), (x_mid, tops[index + 1]))
    _text_box(ax, cols["prev"], centers[0], cols["prev_w"], prev_fit[1], prev_fit[0], True, fontsize)
    x_prev = cols["prev"] + cols["prev_w"] / 2
    ax.plot([x_prev, x_prev], [centers[0] - prev_fit[1] / 2, centers[-1]], color="#222222", linewidth=0.7)
    _arrow(ax, (x_prev, centers[-1]), (cols["main"], centers[-1]))
    row_top = [c + h / 2 for c, h in zip(centers, heights, strict=True)]
    row_bottom = [c - h / 2 for c, h in zip(centers, heights, strict=True)]
    last = len(rows) - 1
    for label, first, end in [
        ("Identification", 0, 0),
        ("Screening", 1, last - 2),
        ("Included", last - 1, last),
    ]:
        y0, y1 = row_bottom[end], row_top[first]
        _rect(ax, cols["phase"], y0, PHASE_WIDTH_IN, y1 - y0, PHASE_FILL)
        ax.text(cols["phase"] + PHASE_WIDTH_IN / 2, (y0 + y1) / 2, label, rotation=90, ha="center",
                va="center", fontsize=fontsize + 1, fontweight="bold")  # fmt: skip


__all__ = ["prisma_update_diagram"]
