"""Command-line interface: ``evmeta template | validate | demo | ...``.

Every command catches evmeta's own errors and prints them as messages; no traceback
reaches a user for a mistake in their input.
"""

from __future__ import annotations

import json
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
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
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


@app.command()
def template(
    path: Annotated[Path, typer.Argument(help="Workbook to write (.xlsx), or a folder with --csv.")],
    csv: Annotated[
        bool, typer.Option("--csv", help="Write one CSV file per sheet into the folder PATH.")
    ] = False,
    force: ForceOption = False,
) -> None:
    """Write an empty extraction template (workbook with dropdowns, or CSV files)."""
    from evmeta.schema.columns import SHEETS
    from evmeta.schema.template import write_template

    if not csv and path.suffix.lower() != ".xlsx":
        _echo_err(f"error: {path} should end in .xlsx (or use --csv for a folder of CSV files)")
        raise typer.Exit(2)
    if csv:
        from evmeta._paths import check_output

        with _refusals():
            check_output(path, folder=True)
        _outputs([path / f"{sheet}.csv" for sheet in SHEETS], force=force)
    else:
        _outputs([path], force=force)
    with _refusals():
        written = write_template(path, csv_dir=csv)
    typer.echo(f"wrote {written}")


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="Extraction workbook (.xlsx) or folder of CSV files.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the problems as JSON.")] = False,
    summary: Annotated[bool, typer.Option("--summary", help="Also print rows per sheet.")] = False,
) -> None:
    """Check an extraction; exit 0 = no errors, 1 = errors found, 2 = not readable."""
    from evmeta.schema.validate import sort_problems, validate_extraction

    extraction, problems = validate_extraction(path)
    problems = sort_problems(problems)
    errors = [p for p in problems if p.severity == "error"]
    notes = [p for p in problems if p.severity == "note"]
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "file": str(path),
                    "errors": len(errors),
                    "notes": len(notes),
                    "problems": [p.to_dict() for p in problems],
                },
                indent=1,
                default=str,
            )
        )
    else:
        for problem in problems:
            typer.echo(str(problem) if problem.severity == "error" else f"note: {problem}")
        if summary and extraction is not None:
            typer.echo(extraction.summary())
        typer.echo(f"{len(errors)} error(s), {len(notes)} note(s)")
    if extraction is None:
        raise typer.Exit(2)
    raise typer.Exit(1 if errors else 0)


@app.command()
def harmonize(
    workbook: Annotated[Path, typer.Argument(help="Extraction workbook (.xlsx) or folder of CSV files.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Comparisons CSV to write.")] = Path(
        "comparisons.csv"
    ),
    measure: Annotated[str, typer.Option(help="SMD, MD, ROM, NMD, OR, RR, RD or NMD_or_SMD.")] = "SMD",
    outcome: Annotated[
        list[str] | None, typer.Option(help="Outcome to keep (repeatable); all by default.")
    ] = None,
    timepoint: Annotated[str, typer.Option(help="last, first, all, or a number of days.")] = "last",
    shared_control: Annotated[str, typer.Option(help="split (divide control n) or keep.")] = "split",
    force: ForceOption = False,
) -> None:
    """Write one row per comparison (yi, vi, moderators) and exclusions.csv beside it."""
    from evmeta.comparisons import build_comparisons
    from evmeta.errors import ExtractionError
    from evmeta.schema.validate import read_extraction
    from evmeta.sheets.export import write_csv

    exclusions_path = output.parent / "exclusions.csv"
    _outputs([output, exclusions_path], inputs=[workbook], force=force)
    try:
        extraction = read_extraction(workbook)
    except ExtractionError as exc:
        for problem in exc.problems:
            _echo_err(str(problem) if problem.severity == "error" else f"note: {problem}")
        _echo_err("fix the errors above (evmeta validate lists them), then run harmonize again")
        raise typer.Exit(2 if exc.fatal else 1) from None
    try:
        point: str | float = float(timepoint)
    except ValueError:
        point = timepoint
    try:
        comparisons = build_comparisons(
            extraction, measure, outcome=outcome or None, timepoint=point, shared_control=shared_control
        )
    except ExtractionError as exc:
        for problem in exc.problems:
            _echo_err(f"error: {problem}")
        raise typer.Exit(1) from None
    except ValueError as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(2) from None
    with _refusals():
        write_csv(comparisons.table, output)
        exclusions = write_csv(comparisons.exclusions, exclusions_path)
    typer.echo(comparisons.summary())
    typer.echo(f"wrote {output} and {exclusions}")


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

    try:
        spec = copy_example(output)
    except FileExistsError as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(2) from None
    typer.echo(f"copied the example workbook and spec to {output}")
    run(spec, output=output / "report", quiet=quiet)


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
    from evmeta.errors import EvmetaError, ExtractionError

    if output is not None:
        _check_report_folder(output, spec, force)
    try:
        result = run_analysis(spec, output=output, quiet=quiet)
    except ExtractionError as exc:
        for problem in exc.problems:
            _echo_err(str(problem) if problem.severity == "error" else f"note: {problem}")
        _echo_err("the extraction has errors; fix them (evmeta validate lists them) and run again")
        raise typer.Exit(1) from None
    except EvmetaError as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(2) from None
    except OSError as exc:
        _echo_err(f"error: could not write the report: {exc.filename or ''} {exc.strerror or exc}")
        raise typer.Exit(2) from None
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"report: {result.output / 'report.html'}")


@app.command()
def lookup(
    workbook: Annotated[Path, typer.Argument(help="Extraction workbook (.xlsx) or folder of CSV files.")],
    fill_missing: Annotated[
        bool, typer.Option("--fill-missing", help="Write <name>.filled.xlsx with empty cells filled.")
    ] = False,
    offline: Annotated[bool, typer.Option("--offline", help="Use only the cache; make no request.")] = False,
    cache: Annotated[
        Path | None, typer.Option(help="Cache folder (default: .evmeta-cache beside the workbook).")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help="Stop the whole run after this many seconds; unreached studies are listed."),
    ] = None,
    request_timeout: Annotated[
        float, typer.Option(help="Give up one request (retries included) after this many seconds.")
    ] = 60.0,
    force: ForceOption = False,
) -> None:
    """Check the studies sheet against Crossref (DOI) and PubMed (PMID)."""
    from evmeta.review.lookup import run_lookup

    if (timeout is not None and not timeout > 0) or not request_timeout > 0:
        _echo_err("error: --timeout and --request-timeout must be positive numbers of seconds")
        raise typer.Exit(2)
    if fill_missing:
        _outputs([workbook.with_name(workbook.stem + ".filled.xlsx")], inputs=[workbook], force=force)
    with _refusals():
        result, target = run_lookup(
            workbook,
            cache=cache,
            offline=offline,
            fill=fill_missing,
            timeout=timeout,
            request_timeout=request_timeout,
        )
    for message in result.messages():
        typer.echo(message)
    checked = int((result.rows["source"] != "").sum())
    typer.echo(
        f"{checked} of {len(result.rows)} studies found; {len(result.messages())} message(s); "
        f"{result.requests_made} request(s)"
    )
    if result.not_checked:
        typer.echo(
            f"{len(result.not_checked)} studies not checked (time limit of {timeout:g} s reached): "
            + ", ".join(result.not_checked)
        )
    if target is not None:
        typer.echo(f"wrote {target}")


@app.command()
def reconcile(
    workbooks: Annotated[
        list[Path] | None, typer.Argument(help="The two reviewers' workbooks, A then B.")
    ] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Reconciliation workbook to write.")] = Path(
        "reconciliation.xlsx"
    ),
    apply: Annotated[
        Path | None, typer.Option("--apply", help="Build the final workbook from this adjudicated file.")
    ] = None,
    force: ForceOption = False,
) -> None:
    """Compare two extractions (A B -o reconciliation.xlsx), or apply decisions (--apply FILE)."""
    from evmeta.errors import ExtractionError
    from evmeta.review.reconcile import apply_decisions, write_reconciliation
    from evmeta.review.reconcile import reconcile as compare_books

    if apply is not None:
        final = apply.with_name(apply.stem + ".final.xlsx")
        consensus = apply.with_name(apply.stem + ".consensus.xlsx")
        _outputs([final], inputs=[apply, consensus, *(workbooks or [])], force=force)
        from evmeta.errors import EvmetaError

        try:
            final = apply_decisions(apply, final)
        except EvmetaError as exc:  # undecided discrepancies or a broken file: exit 1
            _echo_err(f"error: {exc}")
            raise typer.Exit(1) from None
        except OSError as exc:
            _echo_err(f"error: could not write {final}: {exc.strerror or exc}")
            raise typer.Exit(2) from None
        typer.echo(f"wrote {final}")
        return
    if not workbooks or len(workbooks) != 2:
        _echo_err("error: give two workbooks (reviewer A, reviewer B), or --apply reconciliation.xlsx")
        raise typer.Exit(2)
    consensus = output.with_name(output.stem + ".consensus.xlsx")
    _outputs([output, consensus], inputs=workbooks, force=force)
    try:
        result = compare_books(*workbooks)
    except ExtractionError as exc:
        for problem in exc.problems:
            _echo_err(str(problem))
        raise typer.Exit(2) from None
    with _refusals():
        path, consensus = write_reconciliation(result, output)
    typer.echo(result.summary())
    typer.echo(f"wrote {path} and {consensus}")


@app.command()
def dedupe(
    export: Annotated[
        list[Path],
        typer.Argument(
            help="Search exports (one per database): RIS (.ris), PubMed MEDLINE (.nbib/.txt) or CSV."
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="CSV to write.")] = Path("deduplicated.csv"),
    force: ForceOption = False,
) -> None:
    """Cluster duplicate search records; write every record with cluster_id, keep and score."""
    from evmeta.review.dedupe import dedupe_file

    _outputs([output, output.with_suffix(".prisma.json")], inputs=list(export), force=force)
    with _refusals():
        result = dedupe_file(list(export), output)
    for warning in result.warnings:
        _echo_err(f"warning: {warning}")
    for name, value in result.counts.items():
        typer.echo(f"{name.replace('_', ' ')}: {value}")
    typer.echo(f"wrote {output} and {output.with_suffix('.prisma.json')}")


@app.command("import-wide")
def import_wide(
    table: Annotated[Path, typer.Argument(help="Comparison table: CSV or .xlsx, one row per comparison.")],
    map_path: Annotated[Path, typer.Option("--map", help="Map (TOML): [columns], [constants], [options].")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Extraction workbook to write (.xlsx).")],
    sheet: Annotated[str | None, typer.Option("--sheet", help="Sheet of an .xlsx table (default: the first).")] = None,
) -> None:
    """Import a wide comparison table (treatment and control side by side) into a workbook."""
    from evmeta.errors import EvmetaError
    from evmeta.schema.wide_import import import_wide as run_import

    try:
        result = run_import(table, map_path, output, sheet=sheet)
    except EvmetaError as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(2) from None
    typer.echo(result.summary())
    typer.echo(
        f"wrote {output} and {output.with_name(output.stem + '.import_log.csv')}; check it with: evmeta validate {output}"
    )


def _print_problems(problems) -> None:
    for problem in problems:
        _echo_err(str(problem) if problem.severity == "error" else f"note: {problem}")


@app.command("screen-sheet")
def screen_sheet(
    deduplicated: Annotated[
        Path | None, typer.Argument(help="deduplicated.csv written by `evmeta dedupe`.")
    ] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="Screening workbook to write.")] = Path(
        "screening.xlsx"
    ),
    check: Annotated[
        Path | None,
        typer.Option("--check", help="Validate a filled screening log and print the screeners' kappa."),
    ] = None,
    studies: Annotated[
        Path | None,
        typer.Option(
            "--studies",
            help="With --check: write an extraction workbook whose studies sheet "
            "lists the reports included at full text, each with its record_id.",
        ),
    ] = None,
) -> None:
    """Write the title/abstract and full-text screening log (or --check a filled one)."""
    from evmeta.errors import EvmetaError
    from evmeta.review.screening import (
        ScreeningError,
        check_against_deduplicated,
        raise_if_errors,
        read_deduplicated,
        read_screening,
        write_screening_sheet,
    )

    try:
        if check is None:
            if deduplicated is None:
                _echo_err("error: give deduplicated.csv (from `evmeta dedupe`), or --check screening.xlsx")
                raise typer.Exit(2)
            written = write_screening_sheet(deduplicated, output)
            typer.echo(f"wrote {written}")
            return
        screening = read_screening(check)
        if deduplicated is not None:
            raise_if_errors(check_against_deduplicated(screening, read_deduplicated(deduplicated)))
    except ScreeningError as exc:
        _print_problems(exc.problems)
        raise typer.Exit(1) from None
    except EvmetaError as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(2) from None
    _report_screening(screening, studies)


def _report_screening(screening, studies: Path | None) -> None:
    """Print the screeners' agreement; write the studies sheet of the included reports."""
    from evmeta.review.screening import included_study_rows, screening_agreement

    stages = {"title_abstract": "title/abstract", "full_text": "full text"}
    for row in screening_agreement(screening).itertuples():
        typer.echo(
            f"{stages[row.stage]}: {row.n_agree} of {row.n_compared} decisions agree "
            f"({row.percent_agreement:.1f}%), Cohen's kappa {row.kappa:.3f}"
        )
    typer.echo(f"{len(screening.table)} records screened, {len(screening.included)} reports included")
    if studies is not None:
        from evmeta.schema.template import write_template

        write_template(studies, data={"studies": included_study_rows(screening)})
        typer.echo(f"wrote {studies} (studies sheet: one row per included report, with its record_id)")


@app.command()
def prisma(
    search: Annotated[
        list[Path],
        typer.Option("--search", help="Search exports, one per database: --search a.nbib b.ris c.csv."),
    ],
    dedupe: Annotated[Path, typer.Option("--dedupe", help="deduplicated.csv from `evmeta dedupe`.")],
    screening: Annotated[Path, typer.Option("--screening", help="Filled screening log.")],
    extraction: Annotated[Path, typer.Option("--extraction", help="Extraction workbook (studies sheet).")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Figure: .pdf, .svg or .png; no suffix writes all three.")
    ] = Path("prisma.pdf"),
    width: Annotated[str, typer.Option(help="double (180 mm), single (85 mm) or a width in mm.")] = "double",
    register: Annotated[
        list[Path] | None,
        typer.Option("--register", help="Export of a study register searched (repeatable)."),
    ] = None,
    more_search: Annotated[
        list[Path] | None, typer.Argument(help="Further search exports (after --search).", show_default=False)
    ] = None,
) -> None:
    """Draw the PRISMA 2020 flow diagram from the review's files; counts also go to <output>.csv."""
    from evmeta.errors import EvmetaError
    from evmeta.plots._style import save_figure
    from evmeta.plots.prisma import prisma_diagram
    from evmeta.review.prisma import prisma_counts, problems_of
    from evmeta.sheets.export import write_csv

    fmt = output.suffix.lower().lstrip(".")
    if fmt not in {"pdf", "svg", "png", ""}:
        _echo_err(f"error: {output} should end in .pdf, .svg or .png (or have no suffix for all three)")
        raise typer.Exit(2)
    try:
        size: str | float = width if width in {"double", "single"} else float(width)
        counts = prisma_counts(
            [*search, *(more_search or [])], dedupe, screening, extraction, registers=register or []
        )
    except ValueError:
        _echo_err(f"error: --width must be double, single or a number of mm, got {width!r}")
        raise typer.Exit(2) from None
    except EvmetaError as exc:
        _print_problems(problems_of(exc))
        raise typer.Exit(1) from None
    for note in counts.notes:
        typer.echo(f"note: {note}")
    formats = (fmt,) if fmt else ("pdf", "svg", "png")
    written = save_figure(prisma_diagram(counts, width=size), output.with_suffix(""), formats=formats)
    table = write_csv(counts.to_frame(), output.with_suffix(".csv"))
    typer.echo(f"wrote {', '.join(map(str, written))} and {table}")


@app.command()
def digitized(
    file: Annotated[Path, typer.Argument(help="WebPlotDigitizer project (.json/.tar) or CSV export.")],
    kind: Annotated[str, typer.Option("--kind", help="bar or point chart.")],
    error: Annotated[
        str, typer.Option("--error", help="sd or sem: what the figure legend says the error bars are.")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Outcome rows (CSV) to write.")] = Path(
        "rows.csv"
    ),
) -> None:
    """Outcome rows (arm, mean, sd or sem, data_source=figure) from a WebPlotDigitizer export."""
    from evmeta.review.digitized import DigitizedError, read_digitized
    from evmeta.sheets.export import write_csv

    try:
        rows = read_digitized(file, kind=kind.strip().lower(), error=error.strip().lower())
    except DigitizedError as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(2) from None
    write_csv(rows, output)
    typer.echo(f"{len(rows)} arm(s); wrote {output}")


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
    from evmeta.errors import EvmetaError, ExtractionError

    if scheduler and workers:
        _echo_err("note: --workers sizes the local cluster; it is ignored with --scheduler")
    try:
        result = run_multiverse(
            spec,
            output=output,
            scheduler=scheduler,
            workers=workers,
            null_resamples=null_resamples,
            quiet=quiet,
        )
    except ExtractionError as exc:
        for problem in exc.problems:
            _echo_err(str(problem) if problem.severity == "error" else f"note: {problem}")
        _echo_err("the extraction has errors; fix them (evmeta validate lists them) and run again")
        raise typer.Exit(1) from None
    except EvmetaError as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(2) from None
    for sentence in result.sentences:
        typer.echo(sentence)
    typer.echo(f"wrote {result.output / 'multiverse.csv'} and {result.output / 'multiverse.html'}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        _echo_err("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
