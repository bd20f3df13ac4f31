"""`evmeta run` writes its folder atomically (issue 22 item 8, issue 29 items 2-4).

The report is built in a hidden folder beside the target under a lock and moved in only
when complete; a failed run leaves an earlier report marked out of date; a second run into
the same folder is refused while the first runs; a result file that does not read back is
removed with a note; SIGTERM ends the figure workers with the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evmeta._outputs import FAILED, INCOMPLETE, OutputFolder
from evmeta.cli import app
from evmeta.errors import PathError
from tests.conftest import EXAMPLE

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def _earlier_report(folder: Path) -> None:
    folder.mkdir(parents=True)
    (folder / "report.html").write_text("<html><body><h1>old</h1></body></html>")
    (folder / "gone.csv").write_text("an output the new run no longer writes")
    (folder / "notes.txt").write_text("the reviewer's own file")
    (folder / "provenance.json").write_text(
        json.dumps({"outputs": ["report.html", "gone.csv", "provenance.json"]})
    )


def _hidden(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.startswith(".")]


def test_commit_replaces_the_earlier_report_and_keeps_foreign_files(tmp_path):
    target = tmp_path / "report"
    _earlier_report(target)
    with OutputFolder(target) as folder:
        assert folder.staging.parent == tmp_path and folder.staging.name.startswith(".report.evmeta-partial-")
        assert (target / "report.html").read_text().startswith("<html><body><h1>old")  # untouched meanwhile
        (folder.staging / "report.html").write_text("new")
        (folder.staging / "provenance.json").write_text(json.dumps({"outputs": ["report.html"]}))
        folder.commit(last=["provenance.json", "report.html"])
    assert (target / "report.html").read_text() == "new"
    assert not (target / "gone.csv").exists()  # listed by the earlier run, not written now
    assert (target / "notes.txt").exists()  # never evmeta's
    assert not (target / INCOMPLETE).exists() and not _hidden(tmp_path)


def test_a_failed_run_marks_the_earlier_report_out_of_date(tmp_path):
    target = tmp_path / "report"
    _earlier_report(target)
    with pytest.raises(ValueError), OutputFolder(target) as folder:
        (folder.staging / "comparisons.csv").write_text("half")
        raise ValueError("Singular matrix")
    assert "Singular matrix" in (target / FAILED).read_text()
    html = (target / "report.html").read_text()
    assert "This report is out of date" in html and html.index("out of date") < html.index("<h1>old")
    assert not (target / "comparisons.csv").exists() and not _hidden(tmp_path)
    # The next successful run clears the marks.
    with OutputFolder(target) as folder:
        (folder.staging / "report.html").write_text("<html><body>new</body></html>")
        folder.commit()
    assert not (target / FAILED).exists() and "out of date" not in (target / "report.html").read_text()


def test_an_interruption_removes_the_staging_folder(tmp_path):
    target = tmp_path / "report"
    with pytest.raises(KeyboardInterrupt), OutputFolder(target) as folder:
        (folder.staging / "a.csv").write_text("x")
        raise KeyboardInterrupt
    assert not target.exists() and not _hidden(tmp_path)


def test_a_killed_runs_staging_folder_is_cleared_by_the_next(tmp_path):
    stale = tmp_path / ".report.evmeta-partial-abc"
    stale.mkdir()
    (stale / "posterior.nc").write_text("half")
    with OutputFolder(tmp_path / "report") as folder:
        folder.commit()
    assert not stale.exists()


def test_a_second_run_into_the_same_folder_is_refused(tmp_path):
    target = tmp_path / "report"
    with OutputFolder(target), pytest.raises(PathError, match="another evmeta run"):
        with OutputFolder(target):
            pass
    spec = tmp_path / "a.toml"
    spec.write_text(f'[analysis]\nname = "a"\nextraction = "{EXAMPLE}"\n')
    with OutputFolder(target):
        result = runner.invoke(app, ["run", str(spec), "-o", str(target), "--quiet"])
    assert result.exit_code == 2 and "another evmeta run" in result.output, result.output
    assert "Traceback" not in result.output


def test_a_folder_evmeta_left_incomplete_may_be_written_again(tmp_path):
    from evmeta.cli._app import _guard_folder

    target = tmp_path / "report"
    target.mkdir()
    (target / INCOMPLETE).write_text("")
    (target / "comparisons.csv").write_text("x")
    _guard_folder(target)  # no SystemExit: evmeta's own folder


def test_a_posterior_that_does_not_read_back_is_not_reported(tmp_path):
    from evmeta.analysis.pipeline import RunState, _drop_unreadable

    (tmp_path / "posterior.nc").write_bytes(b"\x89HDF\r\n\x1a\n truncated by a second writer")
    (tmp_path / "provenance.json").write_text("{}")
    run = RunState(spec=None, output=tmp_path, comparisons=None, exclusions=None)
    run.files = [tmp_path / "posterior.nc", tmp_path / "results.csv"]
    run.provenance = {"outputs": ["posterior.nc", "results.csv"]}
    _drop_unreadable(run)
    assert not (tmp_path / "posterior.nc").exists()
    assert [p.name for p in run.files] == ["results.csv"]
    assert "posterior.nc was written but does not read back" in run.notes[0]
    assert json.loads((tmp_path / "provenance.json").read_text())["outputs"] == ["results.csv"]


def _children(pid: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.add(int(entry.name))
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_ends_the_run_and_its_workers(tmp_path, sig):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    target = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "evmeta.cli", "demo", "-o", str(target), "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    workers: set[int] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not workers and process.poll() is None:
        workers = _children(process.pid)
        time.sleep(0.05)
    if process.poll() is not None:
        pytest.skip("the run finished before a worker started")
    process.send_signal(sig)
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode != 0
    assert b"Traceback" not in err, err.decode()
    time.sleep(0.5)
    alive = [
        w
        for w in workers
        if Path(f"/proc/{w}").exists()
        and "Z" not in Path(f"/proc/{w}/stat").read_text().rsplit(")", 1)[1].split()[0]
    ]
    assert not alive, alive
    report = target / "report"
    assert not (report / "report.html").exists()  # no half report that looks complete
    assert not [p for p in target.iterdir() if p.name.startswith(".report.evmeta")]
