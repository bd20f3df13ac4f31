"""The Python blocks of the README and of the guides run as written, in order, each page in
a temporary copy of the repository's example files; and the docstrings' examples pass.

A newcomer copies these blocks first; a snippet that uses a name before defining it, or
writes over a tracked file, fails here rather than on their machine.
"""

from __future__ import annotations

import doctest
import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md"))]


def python_blocks(page: str) -> list[str]:
    return BLOCK.findall((ROOT / page).read_text(encoding="utf-8"))


def test_readme_and_guides_have_python_examples():
    assert len(python_blocks("README.md")) == 1
    assert len(python_blocks("docs/guide/analyst.md")) >= 3
    assert python_blocks("docs/guide/author.md")


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)])
def test_python_blocks_run_in_order(page: str, tmp_path: Path):
    for folder in ("extraction", "analyses"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    tracked_before = {p: p.read_bytes() for p in (tmp_path / "extraction").iterdir() if p.is_file()}
    script = "\n\n".join(f"# --- {page} block {i + 1}\n{b}" for i, b in enumerate(python_blocks(page)))
    (tmp_path / "blocks.py").write_text(
        "import matplotlib\nmatplotlib.use('Agg')\n" + script, encoding="utf-8"
    )
    env_path = {"PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "blocks.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
        env={**__import__("os").environ, **env_path, "EVMETA_FIGURE_WORKERS": "0"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    # The snippets write only new files; the repository's own files stay as they were.
    for path, content in tracked_before.items():
        assert path.read_bytes() == content, f"a block of {page} rewrote {path.name}"


def _modules_with_examples() -> list[str]:
    names = []
    for path in sorted((ROOT / "evmeta").rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            names.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return names


@pytest.mark.parametrize("module", _modules_with_examples())
def test_docstring_examples(module: str):
    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = finder.find(importlib.import_module(module))
    assert tests
    for test in tests:
        runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) of {module} failed"
