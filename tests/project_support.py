"""Test support for the review-project tests (tests/test_project*.py).

* ``PostgresCluster``: a throwaway PostgreSQL cluster started from Debian's server binaries
  (``/usr/lib/postgresql/*/bin``) on 127.0.0.1 and a free port, as the ``postgres`` user
  when the tests run as root (``initdb`` refuses root). Without the binaries the PostgreSQL
  tests skip, except with ``CI=true`` (``.ci/run`` installs the package), where they fail.
* ``updated_extraction``: the second extraction version of the living-review scenario,
  built from the bundled example workbook (see tests/data/project/README.md).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_DATA = ROOT / "tests" / "data" / "project"
SEARCH = ROOT / "extraction" / "search"
BUNDLED_EXPORTS = [SEARCH / "pubmed.nbib", SEARCH / "embase.ris", SEARCH / "scopus.csv"]


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresCluster:
    """A PostgreSQL server in a temporary folder; ``new_database()`` gives an empty database."""

    def __init__(self) -> None:
        bin_dir = _binaries()
        if bin_dir is None:
            message = "PostgreSQL server binaries not found (apt-get install postgresql)"
            if os.environ.get("CI") == "true":
                pytest.fail(message + "; CI=true requires the PostgreSQL tests to run")
            pytest.skip(message)
        self.bin = bin_dir
        self.folder = Path(tempfile.mkdtemp(prefix="evmeta-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.user:
            shutil.chown(self.folder, "postgres")
        self.count = 0
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self._run(
            "pg_ctl", "-D", str(self.data), "-w", "-l", str(self.folder / "log"), "-o",
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off",
            "start",
        )  # fmt: skip

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [*self.user, str(self.bin / tool), *args], capture_output=True, text=True, timeout=120
        )
        if done.returncode:
            raise RuntimeError(f"{tool} failed: {done.stderr or done.stdout}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        self.count += 1
        name = f"evmeta_test_{self.count}_{int(time.time() * 1000) % 100000}"
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def updated_extraction(example: Path, target: Path, copies: dict[str, str]) -> Path:
    """Write ``target``: the example workbook plus new studies cloned from existing ones.

    ``copies`` maps a new DOI suffix (``update.001``) to the study_id it copies. Each new
    study gets study_id ``NEW<k>``, the DOI ``10.9999/evmeta.<suffix>``, year 2026 and copies
    of the source study's preparations, experiments, arms, outcomes and risk-of-bias rows
    (every id of the source study renamed), so the pooled estimate moves honestly.
    """
    import openpyxl

    book = openpyxl.load_workbook(example)
    for index, (suffix, source) in enumerate(copies.items(), start=1):
        new_id = f"NEW{index}"
        rename = _ids_of(book, source, new_id)
        for name in ("studies", "preparations", "experiments", "arms", "outcomes", "risk_of_bias"):
            _clone_rows(book[name], rename, new_id, f"10.9999/evmeta.{suffix}")
    book.save(target)
    return target


def _ids_of(book, study: str, new_id: str) -> dict[str, str]:
    """Every id of ``study`` (first column of each sheet whose rows belong to it) -> new id."""
    rename = {study: new_id}
    for name in ("preparations", "experiments", "arms", "outcomes"):
        sheet = book[name]
        for row in sheet.iter_rows(min_row=2, values_only=True):
            if any(v in rename for v in row[1:3]) and isinstance(row[0], str):
                rename[row[0]] = (
                    new_id + row[0][len(study) :] if row[0].startswith(study) else f"{new_id}-{row[0]}"
                )
    return rename


def _clone_rows(sheet, rename: dict[str, str], new_id: str, doi: str) -> None:
    header = [c.value for c in sheet[1]]
    rows = [list(r) for r in sheet.iter_rows(min_row=2, values_only=True) if any(v in rename for v in r[:3])]
    for row in rows:
        row = [rename.get(v, v) if isinstance(v, str) else v for v in row]
        if sheet.title == "studies":
            values = dict(zip(header, row, strict=False))
            values.update(
                doi=doi, year=2026, title=f"{values['title']} (replication {new_id})", record_id=None
            )
            row = [values.get(h) for h in header]
        sheet.append(row)
