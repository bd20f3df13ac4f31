"""The typer application and what every command shares: error printing, ``--version``,
``--force`` and the output checks (no command writes over an input or, without ``--force``,
over an existing file)."""

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
    """Refuse (exit 2) outputs that are an input, exist without ``--force``, or are unwritable."""
    from evmeta._paths import check_output

    inputs = list(inputs)
    with _refusals():
        for path in outputs:
            check_output(path, inputs=inputs, force=force)


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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        _echo_err("interrupted")
        sys.exit(130)
    finally:
        # The process ends next: spare it the final garbage collection of everything a run
        # built (about 0.6 s after `evmeta run`); the operating system frees the memory.
        gc.freeze()
