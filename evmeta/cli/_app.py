"""The typer application and what every command shares: error printing, ``--version``,
``--force`` and the one output guard.

The output guard (:func:`_outputs` and :func:`_guarded`, :func:`_guard_folder` for folders)
is the only way a command writes: it refuses, before any work, an output that is one of the
command's inputs (side files such as ``<book>.import_log.csv`` or a figure's CSV companion
included), an existing file without ``--force``, two outputs that are one file, a folder of
foreign files, and an unwritable place; and it stages every file in a hidden folder beside
its target and moves it into place only when the command succeeded.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="evmeta",
    help="Meta-analysis of preclinical MSC-EV studies: extraction sheets to forest plots.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain click help: rich markup would eat "[columns]" and other bracketed words.
    rich_markup_mode=None,
)


def _echo_err(message: str) -> None:
    typer.echo(message, err=True)


def _print_version(value: bool) -> None:
    if value:
        from evmeta._version import __version__

        typer.echo(f"evmeta {__version__}")
        raise typer.Exit()


@app.callback()
def _main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Meta-analysis of preclinical MSC-EV studies: extraction sheets to forest plots."""


#: ``--force`` option shared by every command that writes files.
ForceOption = Annotated[bool, typer.Option("--force", help="Replace existing output files.")]


@contextmanager
def _refusals() -> Iterator[None]:
    """Turn evmeta's own errors and file-system errors into one sentence and exit code 2.

    Wrap a command's body in ``with _refusals():`` so that a refused path (PathError), an
    unreadable input or a failed write (disk full, ``-o /proc/x/c.csv``) never shows a
    traceback.
    """
    from evmeta.errors import EvmetaError

    try:
        yield
    except EvmetaError as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(2) from None
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        _echo_err(f"error: {where}{exc.strerror or exc}")
        raise typer.Exit(2) from None


def _outputs(outputs: Iterable[Path], *, inputs: Iterable[Path] = (), force: bool = False) -> None:
    """Refuse (exit 2) outputs that are an input, exist without ``--force``, are one file
    twice, or are unwritable."""
    from evmeta._paths import check_outputs

    with _refusals():
        check_outputs(outputs, inputs=inputs, force=force)


@contextmanager
def _guarded(outputs: Iterable[Path], *, inputs: Iterable[Path] = (), force: bool = False):
    """Check the outputs (exit 2 on refusal), then yield a :class:`evmeta._paths.Staging`
    whose ``path(target)`` the command writes to; files are moved into place when the block
    succeeds and removed when it fails (an error, a full disk, Ctrl-C)."""
    from evmeta._outputs import staged

    outputs = list(outputs)
    _outputs(outputs, inputs=inputs, force=force)
    with _refusals(), staged(outputs) as staging:
        yield staging


#: Files that mark a folder as evmeta's own output (written first, or last when complete).
OWN_MARKERS = ("report.html", "provenance.json", "multiverse_provenance.json", ".evmeta-incomplete")


def _guard_folder(
    output: Path, *, inputs: Iterable[Path] = (), force: bool = False, what: str = "-o"
) -> None:
    """An output folder: not an existing file, not holding nor inside an input, writable, and
    empty or evmeta's own (see :data:`OWN_MARKERS`) unless ``--force``; exit 2 otherwise."""
    from evmeta._paths import check_output, is_within

    inputs = list(inputs)
    with _refusals():
        check_output(output, inputs=inputs, folder=True, what=what)
    for source in inputs:
        if Path(source).exists() and is_within(source, output):
            _echo_err(
                f"error: {what} {output} holds the input {Path(source).name}; choose a folder of its own"
            )
            raise typer.Exit(2)
    own = any((output / marker).exists() for marker in OWN_MARKERS)
    if output.is_dir() and any(output.iterdir()) and not own and not force:
        _echo_err(f"error: {what} {output} is a folder with other files in it; use --force to write there")
        raise typer.Exit(2)


def _require_xlsx(path: Path, what: str, *, alternative: str = "") -> None:
    """Refuse (exit 2) a workbook output not named .xlsx: evmeta writes Excel workbooks only,
    and content under another name (``-o s.ods``) is a file evmeta itself then refuses."""
    if path.suffix.lower() != ".xlsx":
        _echo_err(
            f"error: {path} should end in .xlsx: {what} is written as an Excel workbook"
            f"{alternative} (LibreOffice opens .xlsx; save it as .ods from there if needed)"
        )
        raise typer.Exit(2)


def _print_problems(problems) -> None:
    for problem in problems:
        _echo_err(str(problem) if problem.severity == "error" else f"note: {problem}")


def _end_children() -> None:
    """Terminate this process's worker processes (figure workers, a local Dask cluster)."""
    import multiprocessing

    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    for child in children:
        child.join(2)


_MAIN_PID = [0]


def _interrupt(signum, frame) -> None:
    """SIGINT and SIGTERM: end the workers, remove the staging folders, mark an earlier
    report out of date, and exit at once (128 + the signal's number). Done here rather
    than by raising KeyboardInterrupt, which a signal arriving inside a finalizer would
    swallow and leave the run going."""
    import os
    import signal

    if os.getpid() != _MAIN_PID[0]:  # a forked worker inherited the handler: just end
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second signal must not cut the clean-up
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from evmeta._outputs import abandon_all

    _end_children()
    abandon_all(KeyboardInterrupt())
    _echo_err("interrupted; nothing was written (an earlier report, if any, is marked out of date)")
    sys.stderr.flush()
    sys.stdout.flush()
    os._exit(128 + signum)


def main() -> None:
    """Console-script entry point."""
    import os
    import signal

    _MAIN_PID[0] = os.getpid()
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        app()
    except KeyboardInterrupt:
        _echo_err("interrupted")
        sys.exit(130)
    finally:
        # The process ends next: spare it the final garbage collection of everything a run
        # built (about 0.6 s after `evmeta run`); the operating system frees the memory.
        gc.freeze()
