"""Figures inline in the HTML report: each SVG page as markup, text kept as text."""

from __future__ import annotations

import re
from pathlib import Path


def inline_svg(path: Path | None) -> str:
    """An SVG file inline, scaled to the page width (text stays text)."""
    if path is None or not path.exists():
        return ""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"<\?xml[^>]*\?>", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>", "", text, flags=re.DOTALL)
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    return re.sub(r"<svg ", '<svg class="figure" ', text, count=1).strip()


def figure_svgs(paths: list[Path] | None) -> list[str]:
    """Every SVG page of a figure, in page order."""
    return [inline_svg(p) for p in sorted(p for p in paths or [] if p.suffix == ".svg")]
