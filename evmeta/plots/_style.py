"""Journal defaults shared by every figure: widths, fonts, and embedding rules.

Figures are built on ``matplotlib.figure.Figure`` directly (never pyplot), so nothing
opens a window and nothing depends on an interactive backend.

* width: 180 mm (double column) or 85 mm (single column), or any width in mm;
* every text in one family, :data:`FONT_FAMILY` (DejaVu Sans ships with matplotlib), at 5.5-9 pt;
  numbers in columns are right-aligned in it (its digits are tabular), never in a mono font;
* PDF with TrueType fonts embedded (``pdf.fonttype = 42``: text stays editable);
* SVG with text as text (``svg.fonttype = "none"``); PNG at 300 dpi.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import matplotlib as mpl

from evmeta.errors import PlotError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType


class FigurePages(list["Figure"]):
    """The pages of a figure too tall for one journal page (a list of Figures).

    :func:`save_figure` writes them as one multi-page PDF and numbered PNG/SVG files
    (``stem_1.png``, ``stem_2.png``, ...).
    """


MM = 1 / 25.4
WIDTHS_MM = {"double": 180.0, "single": 85.0}
BASE_FONT_PT = 7.0
#: The one font family of every figure (text measurement in ``_text`` uses it too).
FONT_FAMILY = "DejaVu Sans"
RC: dict[RcKeyType, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": [FONT_FAMILY, "Arial", "Helvetica"],
    "font.size": BASE_FONT_PT,
    "axes.titlesize": 8,
    "axes.labelsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "lines.linewidth": 0.8,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
    "savefig.dpi": 300,
    "figure.dpi": 100,
    # Labels are data (author names, units): "$" is a dollar sign, never mathtext.
    "text.parse_math": False,
    "axes.unicode_minus": True,
}
#: Colours per isolation-method family / a qualitative palette (colour-blind safe, Okabe-Ito).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def width_inches(width: str | float) -> float:
    """Figure width in inches from ``"double"``, ``"single"`` or a number of mm."""
    if isinstance(width, str):
        if width not in WIDTHS_MM:
            raise PlotError(f"width must be 'double', 'single' or a number of mm, got {width!r}")
        return WIDTHS_MM[width] * MM
    return float(width) * MM


@contextmanager
def journal_style() -> Iterator[None]:
    """Apply the journal rcParams while a figure is built."""
    with mpl.rc_context(RC):
        yield


def new_figure(width: str | float, height_in: float) -> Figure:
    """A Figure (no pyplot) of the given width and height."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width_inches(width), height_in), layout=None)


def figure_of(ax: Axes) -> Figure:
    """The figure ``ax`` draws on (``ax.figure``), which a plot given ``ax=`` returns.

    matplotlib types ``Axes.figure`` as ``Figure | SubFigure``. The plots document and
    return a Figure; an Axes of a SubFigure gives that SubFigure back unchanged (it is
    drawn and saved through its parent Figure), hence the cast rather than a check.
    """
    return cast("Figure", ax.figure)


def save_figure(
    figure: Figure | FigurePages, stem: str | Path, formats: Iterable[str] = ("pdf", "svg", "png")
) -> list[Path]:
    """Save ``figure`` as ``stem.<format>`` for each format; returns the paths.

    ``figure`` is a Figure or :class:`FigurePages`: pages go into one multi-page PDF
    (``stem.pdf``) and into numbered PNG and SVG files (``stem_1.svg``, ``stem_2.svg``, ...).
    The figure is laid out once; every format is rendered from that layout.
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    pages = list(figure) if isinstance(figure, FigurePages) else [figure]
    out = []
    with journal_style():
        for fmt in formats:
            if fmt == "pdf" and len(pages) > 1:
                from matplotlib.backends.backend_pdf import PdfPages

                path = stem.with_name(f"{stem.name}.pdf")
                with PdfPages(path, metadata=_metadata("pdf")) as pdf:
                    for page in pages:
                        pdf.savefig(page)
                out.append(path)
                continue
            for page, path in zip(pages, page_paths(stem, len(pages), fmt), strict=True):
                page.savefig(path, format=fmt, dpi=300, metadata=_metadata(fmt), **_options(fmt))
                out.append(path)
    return out


def page_paths(stem: str | Path, pages: int, fmt: str) -> list[Path]:
    """The files :func:`save_figure` writes for ``pages`` pages in format ``fmt``."""
    stem = Path(stem)
    if fmt == "pdf" or pages == 1:  # every page of a PDF goes into one file
        return [stem.with_name(f"{stem.name}.{fmt}")]
    return [stem.with_name(f"{stem.name}_{number}.{fmt}") for number in range(1, pages + 1)]


def _options(fmt: str) -> dict[str, Any]:
    # zlib level 3: as small as the default level 6 on flat-colour figures, and faster.
    return {"pil_kwargs": {"compress_level": 3}} if fmt == "png" else {}


def _metadata(fmt: str) -> dict[str, str]:
    if fmt == "pdf":
        return {"Creator": "evmeta", "Producer": "evmeta (matplotlib)"}
    if fmt == "svg":
        return {"Creator": "evmeta"}
    if fmt == "png":
        return {"Software": "evmeta"}
    return {}
