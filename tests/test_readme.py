"""The README's Python blocks run as written, in order, in a temporary copy of the repository.

A newcomer copies these blocks first; a snippet that uses a name before defining it, or
writes over a tracked file, fails here rather than on their machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

from tests.conftest import ROOT

BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def readme_blocks() -> list[str]:
    return BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))


def test_readme_has_python_blocks():
    assert len(readme_blocks()) >= 3


def test_readme_python_blocks_run_in_order(tmp_path):
    for folder in ("extraction", "analyses"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    tracked_before = {p: p.read_bytes() for p in (tmp_path / "extraction").iterdir() if p.is_file()}
    script = "\n\n".join(
        f"# --- README block {i + 1}\n{block}" for i, block in enumerate(readme_blocks())
    )
    (tmp_path / "readme_blocks.py").write_text(
        "import matplotlib\nmatplotlib.use('Agg')\n" + script, encoding="utf-8"
    )
    result = subprocess.run(
        [sys.executable, "readme_blocks.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    # The snippets write only new files; the repository's own files stay as they were.
    for path, content in tracked_before.items():
        assert path.read_bytes() == content, f"a README block rewrote {path.name}"
