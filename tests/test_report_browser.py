"""report.html in headless Chromium: it loads, the DOM has the forest plot, and the page
is not blank. Skipped with a message where Chromium is not installed, failed when CI is set
(.ci/run installs it)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

import evmeta as em
from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def _png_is_not_blank(path: Path) -> bool:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind == b"IDAT":
            chunks.append(data[offset + 8 : offset + 8 + length])
        offset += 12 + length
    raw = zlib.decompress(b"".join(chunks))
    return len(set(raw[:: max(1, len(raw) // 5000)])) > 5  # more than a handful of distinct byte values


def _require_chromium() -> str:
    """The browser, or a skip on a developer's machine without it; in CI its absence fails."""
    if CHROMIUM is None:
        message = "Chromium is not installed (apt-get install chromium); .ci/run installs it"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but {message}: the browser test must run in CI")
        pytest.skip(message)
    return CHROMIUM


def test_report_renders_in_chromium(tmp_path):
    chromium = _require_chromium()
    run = em.run_analysis(ROOT / "analyses" / "example.toml", output=tmp_path / "report", quiet=True)
    url = (run.output / "report.html").resolve().as_uri()
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [chromium, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    forest = html[html.index('<figure id="forest">') :]
    assert "<svg" in forest[:2000], "the forest plot SVG is not in the rendered page"
    assert "Overall" in forest
    shot = tmp_path / "page.png"
    result = subprocess.run(
        [
            chromium,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--window-size=1200,3000",
            f"--screenshot={shot}",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    assert _png_is_not_blank(shot)
