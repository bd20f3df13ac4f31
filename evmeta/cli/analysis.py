"""Analysis commands: demo, run, multiverse."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from evmeta.cli._app import ForceOption, _echo_err, _guard_folder, _guarded, app


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


def _spec_output(spec: Path, output: Path | None) -> tuple[Path, list[Path]]:
    """The folder an analysis writes (``-o`` or the spec's) and the spec's input files."""
    from evmeta.analysis.spec import load_spec

    with _analysis_errors("the report"):
        loaded = load_spec(spec)
    target = output if output is not None else loaded.output_path
    return target, [spec, loaded.extraction_path]


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

    target, inputs = _spec_output(spec, output)
    _guard_folder(target, inputs=inputs, force=force)
    with _analysis_errors("the report"):
        result = run_analysis(spec, output=target, quiet=quiet)
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
        typer.Option(
            "--null-resamples",
            min=0,
            max=100_000,
            help="Resamples of the specification-curve test (0: none; at most 100000, as in the spec).",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
    force: ForceOption = False,
) -> None:
    """Fit every specification of the spec's multiverse on Dask; write multiverse.csv and the curve."""
    from evmeta.analysis.multiverse import run_multiverse

    if scheduler and workers:
        _echo_err("note: --workers sizes the local cluster; it is ignored with --scheduler")
    target, inputs = _spec_output(spec, output)
    _guard_folder(target, inputs=inputs, force=force)
    # Files of an earlier multiverse run (it wrote multiverse_provenance.json) are replaced;
    # a multiverse.csv or curve of anyone else's needs --force.
    own = (target / "multiverse_provenance.json").exists()
    with (
        _analysis_errors("the multiverse outputs"),
        _guarded(_multiverse_files(spec, target), inputs=inputs, force=force or own) as staging,
    ):
        result = run_multiverse(
            spec,
            output=staging.path(target / "multiverse.csv").parent,
            scheduler=scheduler,
            workers=workers,
            null_resamples=null_resamples,
            quiet=quiet,
        )
    for sentence in result.sentences:
        typer.echo(sentence)
    typer.echo(f"wrote {target / 'multiverse.csv'} and {target / 'multiverse.html'}")


def _multiverse_files(spec: Path, target: Path) -> list[Path]:
    """Every file ``evmeta multiverse`` may write into ``target``."""
    from evmeta.analysis.spec import load_spec

    formats = dict.fromkeys([*load_spec(spec).figures.formats, "svg"])
    names = ["multiverse.csv", "choice_influence.csv", "null_test.csv", "multiverse.html"]
    names += [f"specification_curve.{fmt}" for fmt in formats] + ["multiverse_provenance.json"]
    return [target / name for name in names]
