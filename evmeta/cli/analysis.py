"""Analysis commands: demo, run, multiverse."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from evmeta.cli._app import ForceOption, _echo_err, _refusals, app


@app.command()
def demo(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Folder for the example's files and its report.")
    ] = Path("evmeta-demo"),
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress display.")] = False,
) -> None:
    """Run the bundled, simulated example end to end in a folder of its own (from any directory).

    Copies the example workbook, its true parameters and its analysis spec (shipped with the
    package) into OUTPUT, then runs the spec; the report goes to OUTPUT/report/.
    """
    from evmeta.analysis.demo import copy_example
    from evmeta.errors import PathError

    try:
        spec = copy_example(output)
    except PathError as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(2) from None
    typer.echo(f"copied the example workbook and spec to {output}")
    run(spec, output=output / "report", quiet=quiet)


@contextmanager
def _analysis_errors(outputs: str) -> Iterator[None]:
    """The analysis commands' answers: errors in the extraction (exit 1, each at its cell),
    evmeta's own refusals and unwritable outputs (exit 2), never a traceback."""
    from evmeta.errors import EvmetaError, ExtractionError

    try:
        yield
    except ExtractionError as exc:
        for problem in exc.problems:
            _echo_err(str(problem) if problem.severity == "error" else f"note: {problem}")
        _echo_err("the extraction has errors; fix them (evmeta validate lists them) and run again")
        raise typer.Exit(1) from None
    except EvmetaError as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(2) from None
    except OSError as exc:
        _echo_err(f"error: could not write {outputs}: {exc.filename or ''} {exc.strerror or exc}")
        raise typer.Exit(2) from None


def _check_report_folder(output: Path, spec: Path, force: bool) -> None:
    """A report folder given with -o: a folder, not holding the spec, and evmeta's own unless --force."""
    from evmeta._paths import check_output, is_within

    with _refusals():
        check_output(output, inputs=[spec], folder=True)
    if spec.exists() and is_within(spec, output):
        _echo_err(f"error: -o {output} holds the spec {spec.name}; choose a folder of its own")
        raise typer.Exit(2)
    foreign = output.is_dir() and any(output.iterdir()) and not (output / "report.html").exists()
    if foreign and not force:
        _echo_err(
            f"error: -o {output} is a folder with other files in it; use --force to write the report there"
        )
        raise typer.Exit(2)


@app.command()
def run(
    spec: Annotated[Path, typer.Argument(help="Analysis spec, e.g. analyses/example.toml.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Report folder (default: reports/<name>).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress display.")] = False,
    force: ForceOption = False,
) -> None:
    """Run an analysis spec end to end and write reports/<name>/."""
    from evmeta.analysis.pipeline import run_analysis

    if output is not None:
        _check_report_folder(output, spec, force)
    with _analysis_errors("the report"):
        result = run_analysis(spec, output=output, quiet=quiet)
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"report: {result.output / 'report.html'}")


@app.command()
def multiverse(
    spec: Annotated[Path, typer.Argument(help="Analysis spec with a multiverse section.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Folder to write (default: reports/<name>).")
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler", help="Existing Dask scheduler, e.g. tcp://host:8786, or 'serial' (no Dask)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", min=1, help="Workers of the local cluster (default: CPU cores)."),
    ] = None,
    null_resamples: Annotated[
        int | None,
        typer.Option("--null-resamples", min=0, help="Resamples of the specification-curve test (0: none)."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Fit every specification of the spec's multiverse on Dask; write multiverse.csv and the curve."""
    from evmeta.analysis.multiverse import run_multiverse

    if scheduler and workers:
        _echo_err("note: --workers sizes the local cluster; it is ignored with --scheduler")
    with _analysis_errors("the multiverse outputs"):
        result = run_multiverse(
            spec,
            output=output,
            scheduler=scheduler,
            workers=workers,
            null_resamples=null_resamples,
            quiet=quiet,
        )
    for sentence in result.sentences:
        typer.echo(sentence)
    typer.echo(f"wrote {result.output / 'multiverse.csv'} and {result.output / 'multiverse.html'}")
