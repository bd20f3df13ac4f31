"""PRISMA 2020 flow diagram (new systematic reviews; databases and registers).

The boxes and arrows follow the template of Page et al. (2021) BMJ 372:n71, Figure 1:
phases Identification, Screening and Included on the left; one column of boxes down the
middle (records identified -> records screened -> reports sought for retrieval -> reports
assessed for eligibility -> studies included) and, beside each of the first four, the box
of what left the flow (records removed before screening, records excluded, reports not
retrieved, reports excluded with reasons). Every number comes from a
:class:`evmeta.review.prisma.PrismaCounts`; this module only draws.

Boxes are sized from the measured extent of their text, so nothing overlaps or spills at
either journal width; text stays text in PDF and SVG (see ``_style``).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evmeta.plots._style import BASE_FONT_PT, journal_style, new_figure, width_inches

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

HEADER = "Identification of studies via databases and registers"
HEADER_FILL = "#F6C94C"
PHASE_FILL = "#A9C6E8"
BOX_EDGE = "#222222"
#: Layout constants, in inches.
PAD_IN = 0.07
ROW_GAP_IN = 0.28
MARGIN_IN = 0.06
PHASE_WIDTH_IN = 0.24
#: Average glyph width of DejaVu Sans relative to the font size (first guess for wrapping).
GLYPH_EM = 0.56


def _n(value: int) -> str:
    # No-break spaces: a line is never wrapped inside "(n = 12)".
    return f"(n\u00a0=\u00a0{value:,})"


def _reason_label(code: str) -> str:
    from evmeta.review.screening import REASON_LABELS

    return REASON_LABELS.get(code, code.replace("_", " ").capitalize())


@dataclass
class _Box:
    lines: list[str]
    center: bool = True


#: A box's wrapped text and the height it needs (inches), from :func:`_fit`.
Fit = tuple[str, float]
#: One row of the diagram: main box, its text and height, side box (or None) and its fit.
Row = tuple[_Box, str, float, "_Box | None", "Fit | None"]


def _boxes(counts: Any) -> list[tuple[_Box, _Box | None]]:
    """Rows of (main box, side box) with the PRISMA 2020 wording."""
    lines = ["Records identified from:", f"Databases {_n(sum(counts.databases.values()))}"]
    lines += [f"    {name} {_n(n)}" for name, n in counts.databases.items()]
    registers = getattr(counts, "registers", {})
    if registers:
        lines += [f"Registers {_n(sum(registers.values()))}"]
        lines += [f"    {name} {_n(n)}" for name, n in registers.items()]
    identified = _Box(lines, center=False)
    removed = _Box(
        [
            "Records removed before screening:",
            f"    Duplicate records removed {_n(counts.duplicates_removed)}",
            f"    Records removed for other reasons {_n(counts.removed_other)}",
        ],
        center=False,
    )
    reasons = [f"    {_reason_label(r)} {_n(n)}" for r, n in counts.excluded_reasons.items()]
    return [
        (identified, removed),
        (
            _Box(["Records screened", _n(counts.screened)]),
            _Box(["Records excluded", _n(counts.excluded_screening)]),
        ),
        (
            _Box(["Reports sought for retrieval", _n(counts.sought)]),
            _Box(["Reports not retrieved", _n(counts.not_retrieved)]),
        ),
        (
            _Box(["Reports assessed for eligibility", _n(counts.assessed)]),
            _Box([f"Reports excluded {_n(counts.excluded_full_text)}:", *reasons], center=False),
        ),
        (
            _Box(
                [
                    "Studies included in review",
                    _n(counts.studies_included),
                    "Reports of included studies",
                    _n(counts.reports_included),
                ]
            ),
            None,
        ),
    ]


def _wrap(lines: list[str], chars: int, hang: bool) -> str:
    out = []
    for line in lines:
        indent = len(line) - len(line.lstrip(" ")) + 4 if hang else 0
        out += textwrap.wrap(line, max(8, chars), subsequent_indent=" " * indent) or [""]
    return "\n".join(out)


def _columns(width_in: float) -> dict[str, float]:
    """x positions (inches) of the phase bar, main column and side column."""
    usable = width_in - 2 * MARGIN_IN - PHASE_WIDTH_IN - 0.1
    arrow = max(0.25, 0.08 * usable)
    main = (usable - arrow) * 0.47
    side = usable - arrow - main
    x_main = MARGIN_IN + PHASE_WIDTH_IN + 0.1
    return {"phase": MARGIN_IN, "main": x_main, "main_w": main, "side": x_main + main + arrow, "side_w": side}


def _measure(
    figure: Figure, renderer: RendererBase, text: str, fontsize: float, weight: str = "normal"
) -> tuple[float, float]:
    """Width and height (inches) of ``text`` as it will be drawn."""
    artist = figure.text(0, 0, text, fontsize=fontsize, linespacing=1.3, fontweight=weight)
    box = artist.get_window_extent(renderer)
    artist.remove()
    return box.width / figure.dpi, box.height / figure.dpi


def _fit(
    figure: Figure,
    renderer: RendererBase,
    box: _Box,
    width_in: float,
    fontsize: float,
    weight: str = "normal",
) -> Fit:
    """Wrapped text that fits ``width_in`` and the box height it needs (inches)."""
    inner = width_in - 2 * PAD_IN
    chars = int(inner / (GLYPH_EM * fontsize / 72))
    for _ in range(40):  # bounded: each pass removes a character per line
        text = _wrap(box.lines, chars, hang=not box.center)
        text_w, text_h = _measure(figure, renderer, text, fontsize, weight)
        if text_w <= inner or chars <= 8:
            return text, text_h + 2 * PAD_IN
        chars -= max(1, int(chars * (text_w - inner) / text_w) + 1)
    return text, text_h + 2 * PAD_IN


def prisma_diagram(counts: Any, *, width: str | float = "double", fontsize: float | None = None) -> Figure:
    """Draw the PRISMA 2020 flow diagram for ``counts``.

    Parameters
    ----------
    counts : PrismaCounts
        From :func:`evmeta.review.prisma.prisma_counts` (``em.review.prisma_counts``).
    width : "double", "single" or float
        Journal column width (180 mm, 85 mm) or a width in mm.
    fontsize : float, optional
        Points; default 7 pt (6 pt at single-column width).

    Returns
    -------
    matplotlib.figure.Figure
        Height follows the content. Boxes are ``FancyBboxPatch`` artists with gid ``box``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    width_in = width_inches(width)
    fontsize = fontsize or (BASE_FONT_PT if width_in >= 5 else 6.0)
    with journal_style():
        figure = new_figure(width, 4.0)
        # matplotlib leaves get_renderer unannotated (unused-ignore: the non-strict configuration).
        renderer = FigureCanvasAgg(figure).get_renderer()  # type: ignore[no-untyped-call, unused-ignore]
        cols = _columns(width_in)
        rows: list[Row] = []
        for main, side in _boxes(counts):
            main_text, main_h = _fit(figure, renderer, main, cols["main_w"], fontsize)
            side_fit = _fit(figure, renderer, side, cols["side_w"], fontsize) if side else None
            rows.append((main, main_text, main_h, side, side_fit))
        header = _fit(figure, renderer, _Box([HEADER]), cols["side"] + cols["side_w"] - cols["main"],
                      fontsize + 1, "bold")  # fmt: skip
        header_h = header[1]
        heights = [max(r[2], r[4][1] if r[4] else 0) for r in rows]
        # The rotated phase labels of one-row phases must fit their bar.
        for index, label in [(0, "Identification"), (len(rows) - 1, "Included")]:
            need = _measure(figure, renderer, label, fontsize + 1)[0] + 2 * PAD_IN
            heights[index] = max(heights[index], need)
        total = 2 * MARGIN_IN + header_h + ROW_GAP_IN * len(rows) + sum(heights)
        figure.set_size_inches(width_in, total)
        _draw(figure, rows, heights, cols, header, total, fontsize)
    return figure


def _draw(
    figure: Figure,
    rows: list[Row],
    heights: list[float],
    cols: dict[str, float],
    header: Fit,
    total: float,
    fontsize: float,
) -> None:
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, figure.get_figwidth())
    ax.set_ylim(0, total)
    ax.set_axis_off()
    top = total - MARGIN_IN
    header_text, header_h = header
    header_w = cols["side"] + cols["side_w"] - cols["main"]
    _rect(ax, cols["main"], top - header_h, header_w, header_h, HEADER_FILL)
    ax.text(cols["main"] + header_w / 2, top - header_h / 2, header_text, ha="center", va="center",
            multialignment="center", fontsize=fontsize + 1, fontweight="bold", linespacing=1.3)  # fmt: skip
    y = top - header_h - ROW_GAP_IN
    centers: list[float] = []
    bottoms: list[float] = []
    tops: list[float] = []
    for (main, main_text, main_h, side, side_fit), height in zip(rows, heights, strict=True):
        center = y - height / 2
        _text_box(ax, cols["main"], center, cols["main_w"], main_h, main_text, main.center, fontsize)
        if side is not None and side_fit is not None:  # a side box always has its fit
            _text_box(
                ax, cols["side"], center, cols["side_w"], side_fit[1], side_fit[0], side.center, fontsize
            )
            _arrow(ax, (cols["main"] + cols["main_w"], center), (cols["side"], center))
        centers.append(center)
        tops.append(center + main_h / 2)
        bottoms.append(center - main_h / 2)
        y -= height + ROW_GAP_IN
    x_mid = cols["main"] + cols["main_w"] / 2
    for index in range(len(rows) - 1):
        _arrow(ax, (x_mid, bottoms[index]), (x_mid, tops[index + 1]))
    row_top = [c + h / 2 for c, h in zip(centers, heights, strict=True)]
    row_bottom = [c - h / 2 for c, h in zip(centers, heights, strict=True)]
    for label, first, last in [("Identification", 0, 0), ("Screening", 1, 3), ("Included", 4, 4)]:
        y0, y1 = row_bottom[last], row_top[first]
        _rect(ax, cols["phase"], y0, PHASE_WIDTH_IN, y1 - y0, PHASE_FILL)
        ax.text(cols["phase"] + PHASE_WIDTH_IN / 2, (y0 + y1) / 2, label, rotation=90, ha="center",
                va="center", fontsize=fontsize + 1, fontweight="bold")  # fmt: skip


def _rect(ax: Axes, x: float, y: float, w: float, h: float, fill: str = "white") -> FancyBboxPatch:
    from matplotlib.patches import FancyBboxPatch

    patch = FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.04", facecolor=fill,
                           edgecolor=BOX_EDGE, linewidth=0.7, gid="box")  # fmt: skip
    ax.add_patch(patch)
    return patch


def _text_box(
    ax: Axes, x: float, center: float, w: float, h: float, text: str, centered: bool, fontsize: float
) -> None:
    _rect(ax, x, center - h / 2, w, h)
    if centered:
        ax.text(x + w / 2, center, text, ha="center", va="center", multialignment="center",
                fontsize=fontsize, linespacing=1.3)  # fmt: skip
    else:
        ax.text(x + PAD_IN, center, text, ha="left", va="center", fontsize=fontsize, linespacing=1.3)


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float]) -> None:
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=7, linewidth=0.7,
                                 color=BOX_EDGE, shrinkA=0, shrinkB=0, gid="arrow"))  # fmt: skip
