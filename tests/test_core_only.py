"""The core install (``pip install evmeta``, no extras) runs the reviewer's and analyst's
whole path, and a feature whose extra is missing answers with one sentence naming it.

Each test runs a fresh interpreter in which the optional stacks cannot be imported: a
meta-path finder refuses them, exactly as a core-only environment would (CI also runs this
file in a real core-only virtual environment, where the finder has nothing left to refuse).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from html import unescape
from pathlib import Path

import pytest

from evmeta._extras import EXTRAS, extra_of, install_line

ROOT = Path(__file__).resolve().parent.parent
OPTIONAL = sorted({m for modules in EXTRAS.values() for m in modules})

BLOCKER = textwrap.dedent(
    f"""
    import importlib.machinery
    import sys

    class _NoExtras(importlib.machinery.PathFinder):
        # The path finder, blind to the optional stacks: for them find_spec answers None
        # and an import raises ModuleNotFoundError, as where they are not installed.
        blocked = {OPTIONAL!r}

        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.split(".")[0] in cls.blocked:
                return None
            return importlib.machinery.PathFinder.find_spec(name, path, target)

    sys.meta_path[:] = [
        _NoExtras if finder is importlib.machinery.PathFinder else finder for finder in sys.meta_path
    ]
    """
)


def _core_python(code: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter where no optional module can be imported."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EVMETA_FIGURE_WORKERS": "0"}
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _cli(args: list[str]) -> str:
    return f"""
    import sys
    from evmeta.cli import main
    sys.argv = ["evmeta", *{args!r}]
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    else:
        code = 0
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in _NoExtras.blocked)
    print("LEAKED", leaked)
    sys.exit(code)
    """


def test_every_optional_module_belongs_to_one_extra():
    assert extra_of("pymc.sampling") == "sampling"
    assert extra_of("distributed") == "distributed"
    assert install_line("sampling") == "pip install 'evmeta[sampling]'"
    with pytest.raises(KeyError):
        extra_of("numpy")


def test_template_validate_and_run_without_extras(tmp_path: Path):
    """template, validate and `evmeta run` of a spec with frequentist and exact Bayesian
    models (the bundled example: Bayesian method "auto" = quadrature for two levels)."""
    template = _core_python(_cli(["template", str(tmp_path / "mine.xlsx")]), tmp_path)
    assert template.returncode == 0, template.stderr
    assert (tmp_path / "mine.xlsx").is_file()

    shutil.copytree(ROOT / "extraction", tmp_path / "extraction", ignore=shutil.ignore_patterns("search"))
    (tmp_path / "analyses").mkdir()
    shutil.copy(ROOT / "analyses" / "example.toml", tmp_path / "analyses" / "example.toml")
    validate = _core_python(_cli(["validate", "extraction/example.xlsx"]), tmp_path)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "LEAKED []" in validate.stdout

    out = tmp_path / "report"
    run = _core_python(_cli(["run", "analyses/example.toml", "-o", str(out), "--quiet"]), tmp_path, 400)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "LEAKED []" in run.stdout, "an optional stack was imported by the core path"
    assert "Traceback" not in run.stderr
    assert (out / "report.html").is_file()
    provenance = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    assert "quadrature" in json.dumps(provenance)
    assert not (out / "posterior.nc").exists()
    html = unescape((out / "report.html").read_text(encoding="utf-8"))
    assert "pip install 'evmeta[sampling]'" in html  # the note says why posterior.nc is missing


def test_nuts_without_the_sampling_extra_is_one_sentence(tmp_path: Path):
    code = """
    import evmeta as em
    from evmeta.errors import MissingExtraError
    comp = em.build_comparisons(em.read_extraction("{book}"), measure="SMD")
    try:
        em.bayesian_meta_analysis(comp, random=["study_id"], method="nuts", seed=1)
    except MissingExtraError as exc:
        print("MESSAGE", exc)
    """.format(book=ROOT / "extraction" / "example.xlsx")
    result = _core_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    message = result.stdout.split("MESSAGE", 1)[1].strip()
    assert message.count(".") <= 1 and "\n" not in message
    assert "NUTS" in message and "pip install 'evmeta[sampling]'" in message


def test_multiverse_without_the_distributed_extra_is_one_sentence(tmp_path: Path):
    shutil.copytree(ROOT / "extraction", tmp_path / "extraction", ignore=shutil.ignore_patterns("search"))
    (tmp_path / "analyses").mkdir()
    shutil.copy(ROOT / "analyses" / "example_multiverse.toml", tmp_path / "analyses")
    shutil.copy(ROOT / "analyses" / "example.toml", tmp_path / "analyses")
    result = _core_python(
        _cli(["multiverse", "analyses/example_multiverse.toml", "-o", str(tmp_path / "mv")]), tmp_path
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "pip install 'evmeta[distributed]'" in result.stdout + result.stderr
