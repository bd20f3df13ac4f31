"""Atomic outputs: every file is written under a temporary name and moved into place.

:func:`staged` serves commands that write a few files: each is written into a hidden
folder beside its target (same file system, so :func:`os.replace` is atomic) and moved
into place when the command succeeded; a full disk, an error or Ctrl-C leaves the targets
untouched and no truncated file behind.

:class:`OutputFolder` serves ``evmeta run``: the report is built in a hidden folder beside
the target, under a lock (a second run into the same folder is refused while the first
runs), and moved into the target only when complete. While files are moved, the target
holds ``.evmeta-incomplete``, so an interrupted move is recognizable (and the next run may
write there). When a run fails, an earlier report in the target is kept but marked out of
date: ``RUN-FAILED.txt`` beside it and a banner at the top of its ``report.html``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TextIO

from evmeta.errors import PathError

#: Prefix of the hidden folders outputs are staged in before they are moved into place.
STAGING_PREFIX = ".evmeta-staging-"
#: Marker file of a folder evmeta is writing (or was interrupted writing).
INCOMPLETE = ".evmeta-incomplete"
#: Written into an earlier report's folder when a later run into it failed.
FAILED = "RUN-FAILED.txt"
#: Staging areas and report folders being written now (for :func:`abandon_all`).
_ACTIVE: list = []


def abandon_all(reason: BaseException | None = None) -> None:
    """Remove every staging folder of this process and mark earlier reports out of date
    (called by the CLI's SIGINT/SIGTERM handler just before the process ends)."""
    for item in list(_ACTIVE):
        try:
            item.abandon(reason)
        except Exception:
            pass
    _ACTIVE.clear()


class Staging:
    """Where a command writes each output before it is moved into place."""

    def __init__(self, targets: Iterable[str | Path]) -> None:
        self.targets = [Path(t) for t in targets]
        self.folders: dict[Path, Path] = {}

    def path(self, target: str | Path) -> Path:
        """The staged path of ``target`` (a declared output, or a declared output without
        its suffix for writers that add one, such as figures written in several formats)."""
        target = Path(target)
        parent = target.parent.resolve()
        if parent not in self.folders:
            parent.mkdir(parents=True, exist_ok=True)
            self.folders[parent] = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=parent))
        return self.folders[parent] / target.name

    def commit(self) -> list[Path]:
        """Move every staged file into place; return the targets written."""
        declared = {t.parent.resolve() / t.name for t in self.targets}
        written = []
        for parent, folder in self.folders.items():
            for staged_file in sorted(folder.iterdir()):
                target = parent / staged_file.name
                if target not in declared:
                    raise PathError(
                        f"{staged_file.name} was written but is not one of the command's declared "
                        "outputs; it was not moved into place"
                    )
                os.replace(staged_file, target)
                written.append(target)
        return written

    def discard(self) -> None:
        """Remove the staging folders and whatever is in them."""
        for folder in self.folders.values():
            shutil.rmtree(folder, ignore_errors=True)
        self.folders.clear()

    def abandon(self, reason: BaseException | None = None) -> None:
        self.discard()


@contextmanager
def staged(targets: Iterable[str | Path]) -> Iterator[Staging]:
    """A :class:`Staging` whose files are moved into place when the block ends normally and
    removed when it raises (``KeyboardInterrupt`` and ``SystemExit`` included)."""
    staging = Staging(targets)
    _ACTIVE.append(staging)
    try:
        yield staging
        staging.commit()
    finally:
        staging.discard()
        if staging in _ACTIVE:
            _ACTIVE.remove(staging)


class OutputFolder:
    """Build a report folder beside ``target`` under a lock; move it in when complete.

    Use as a context manager; write into :attr:`staging`, then call :meth:`commit`. An
    exception before the commit removes the staging folder and marks an earlier report in
    ``target`` as out of date.
    """

    def __init__(self, target: str | Path, *, what: str = "the report") -> None:
        self.target = Path(target)
        self.what = what
        # Staging and lock sit beside the target; inside it when only the target is writable
        # (an existing report folder in a read-only parent).
        parent = self.target.parent
        inside = self.target.is_dir() and parent.exists() and not os.access(parent, os.W_OK | os.X_OK)
        self.parent = self.target if inside else parent
        self.staging: Path | None = None
        #: The open lock file and its path, while this run holds the lock.
        self._lock: tuple[TextIO, Path] | None = None
        self.committed = False

    @property
    def _prefix(self) -> str:
        return f".{self.target.name}.evmeta-partial-"

    def __enter__(self) -> OutputFolder:
        self.parent.mkdir(parents=True, exist_ok=True)
        self._acquire()
        try:
            for stale in self.parent.glob(self._prefix + "*"):  # a killed run's; we hold the lock
                shutil.rmtree(stale, ignore_errors=True)
            self.staging = Path(tempfile.mkdtemp(prefix=self._prefix, dir=self.parent))
        except BaseException:
            self.abandon(failed=False)  # release the lock; nothing was written
            raise
        _ACTIVE.append(self)
        return self

    def _acquire(self) -> None:
        import fcntl

        path = self.parent / f".{self.target.name}.evmeta-lock"
        handle = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise PathError(
                f"another evmeta run ({owner}) is writing {self.target}; wait for it to finish "
                "or write elsewhere with -o"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        self._lock = (handle, path)

    def commit(self, first: Iterable[str] = (), last: Iterable[str] = ()) -> Path:
        """Move the staged files into the target: files of the previous run that this run
        did not write are removed, ``last`` (e.g. ``report.html``) are moved last, and
        files that are not evmeta's (a folder written with ``--force``) are kept."""
        assert self.staging is not None
        self.target.mkdir(parents=True, exist_ok=True)
        marker = self.target / INCOMPLETE
        marker.write_text("evmeta is writing this folder\n", encoding="utf-8")
        (self.target / FAILED).unlink(missing_ok=True)
        names = sorted(p.name for p in self.staging.iterdir() if p.name != INCOMPLETE)
        for name in _previous_outputs(self.target) - set(names):
            (self.target / name).unlink(missing_ok=True)
        last = [n for n in last if n in names]
        for name in [n for n in names if n not in last] + last:
            os.replace(self.staging / name, self.target / name)
        marker.unlink()
        self.committed = True
        return self.target

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.abandon(exc if kind is not None else None, failed=kind is not None)

    def abandon(self, reason: BaseException | None = None, *, failed: bool = True) -> None:
        """Remove the staging folder, mark an earlier report out of date unless this run
        was committed, and release the lock."""
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        try:
            if self.staging is not None:
                shutil.rmtree(self.staging, ignore_errors=True)
            if failed and not self.committed:
                mark_out_of_date(self.target, reason)
        finally:
            if self._lock is not None:
                handle, path = self._lock
                self._lock = None
                path.unlink(missing_ok=True)
                handle.close()


def _previous_outputs(folder: Path) -> set[str]:
    """Files the previous evmeta run listed in its ``provenance.json`` (to be replaced)."""
    import json

    try:
        listed = json.loads((folder / "provenance.json").read_text(encoding="utf-8")).get("outputs", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {n for n in listed if isinstance(n, str) and "/" not in n and n not in {"", ".", ".."}}


BANNER = (
    '<div id="evmeta-out-of-date" style="background:#fdd;border:2px solid #a00;padding:8px;'
    'font-family:sans-serif">This report is out of date: a later run into this folder failed '
    "({when}: {reason}). See RUN-FAILED.txt.</div>"
)


def mark_out_of_date(folder: Path, exc: BaseException | None) -> None:
    """Mark an earlier report in ``folder`` as out of date after a failed run (no-op when
    the folder holds no report)."""
    report = folder / "report.html"
    if not report.is_file():
        return
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if exc is None or isinstance(exc, KeyboardInterrupt):
        reason = "interrupted"
    else:
        reason = str(exc) or type(exc).__name__
    reason = reason.splitlines()[0][:300] if reason else "failed"
    try:
        (folder / FAILED).write_text(
            f"The run of {when} into this folder failed: {reason}\n"
            "The files here are from an earlier run; run the analysis again.\n",
            encoding="utf-8",
        )
        import html

        text = report.read_text(encoding="utf-8")
        text = re.sub(r'<div id="evmeta-out-of-date".*?</div>', "", text, flags=re.DOTALL)
        banner = BANNER.format(when=when, reason=html.escape(reason))
        text, n = re.subn(r"(<body[^>]*>)", lambda m: m.group(1) + banner, text, count=1)
        report.write_text(text if n else banner + text, encoding="utf-8")
    except OSError:
        pass  # marking is a courtesy; the run's own error is what the user must see


def verify_readable(path: Path, reader: Callable[[Path], object]) -> None:
    """Raise :class:`PathError` when a written result file does not read back."""
    try:
        reader(path)
    except Exception as exc:  # any failure to read back means the file is not usable
        raise PathError(
            f"{path.name} was written but does not read back ({type(exc).__name__}: {exc})"
        ) from None
