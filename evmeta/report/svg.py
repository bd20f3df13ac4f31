"""Figures inline in the HTML report: each SVG page as markup, text kept as text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path


def inline_svg(path: Path | None) -> str:
    """An SVG file inline, scaled to the page width (text stays text)."""
    if path is None or not path.exists():
        return ""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"<\?xml[^>]*\?>", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>", "", text, flags=re.DOTALL)
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    text = _prefixed_ids(text, re.sub(r"[^0-9A-Za-z]+", "-", path.stem).strip("-"))
    return re.sub(r"<svg ", '<svg class="figure" ', text, count=1).strip()


def _prefixed_ids(text: str, prefix: str) -> str:
    """Every ``id`` of one SVG, and the references to it, prefixed with ``prefix``:
    matplotlib names the parts of every figure alike (``figure_1``, ``axes_1``), and ids in one
    HTML page must be unique (two figures must not share a clip path or glyph by name)."""
    ids = set(re.findall(r"""\sid=["']([^"']+)["']""", text))
    if not ids:
        return text
    text = re.sub(r"""(\sid=["'])([^"']+)(["'])""", lambda m: f"{m[1]}{prefix}-{m[2]}{m[3]}", text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m[1]})" if m[1] in ids else m[0], text)
    return re.sub(
        r"""(href=["']#)([^"']+)(["'])""",
        lambda m: f"{m[1]}{prefix}-{m[2]}{m[3]}" if m[2] in ids else m[0],
        text,
    )


def figure_svgs(paths: Sequence[Path] | None) -> list[str]:
    """Every SVG page of a figure, in page order."""
    return [inline_svg(p) for p in sorted(p for p in paths or [] if p.suffix == ".svg")]


#: Widest figure shown at single-column size: 85 mm plus a margin for rounding.
SINGLE_COLUMN_MM = 100.0
_UNITS_MM = {"pt": 25.4 / 72, "in": 25.4, "mm": 1.0, "cm": 10.0, "px": 25.4 / 96, "": 25.4 / 96}


def svg_width_mm(path: Path) -> float | None:
    """Width of an SVG file in mm from its root ``width`` attribute (None if not stated)."""
    head = path.read_text(encoding="utf-8")[:4000]
    match = re.search(r"<svg\b[^>]*?\swidth=\"([\d.]+)\s*(pt|in|mm|cm|px|)\"", head)
    if match is None:
        return None
    return float(match.group(1)) * _UNITS_MM[match.group(2)]


def is_single_column(paths: Sequence[Path] | None) -> bool:
    """Whether a figure was drawn at single-column width (its first SVG page at most
    :data:`SINGLE_COLUMN_MM` wide); the report then shows it at that size, not page-wide."""
    pages = sorted(p for p in paths or [] if p.suffix == ".svg" and p.exists())
    if not pages:
        return False
    width = svg_width_mm(pages[0])
    return width is not None and width <= SINGLE_COLUMN_MM
