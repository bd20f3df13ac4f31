"""Command-line interface: ``evmeta template | validate | demo | ...``.

Every command catches evmeta's own errors and prints them as messages; no traceback
reaches a user for a mistake in their input.
"""

from __future__ import annotations

import json
import sys
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


@app.command()
def template(
    path: Annotated[Path, typer.Argument(help="Workbook to write (.xlsx), or a folder with --csv.")],
    csv: Annotated[
        bool, typer.Option("--csv", help="Write one CSV file per sheet into the folder PATH.")
    ] = False,
) -> None:
    """Write an empty extraction template (workbook with dropdowns, or CSV files)."""
    from evmeta.schema.template import write_template

    if not csv and path.suffix.lower() != ".xlsx":
        _echo_err(f"error: {path} should end in .xlsx (or use --csv for a folder of CSV files)")
        raise typer.Exit(2)
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
) -> None:
    """Write one row per comparison (yi, vi, moderators) and exclusions.csv beside it."""
    from evmeta.comparisons import build_comparisons
    from evmeta.errors import ExtractionError
    from evmeta.schema.validate import read_extraction
    from evmeta.sheets.export import write_csv

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
    except ValueError as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(2) from None
    write_csv(comparisons.table, output)
    exclusions = write_csv(comparisons.exclusions, output.parent / "exclusions.csv")
    typer.echo(comparisons.summary())
    typer.echo(f"wrote {output} and {exclusions}")


@app.command()
def demo(
    spec: Annotated[Path, typer.Option(help="Analysis spec of the bundled example.")] = Path(
        "analyses/example.toml"
    ),
    output: Annotated[Path | None, typer.Option(help="Report folder (default: reports/example).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress display.")] = False,
) -> None:
    """Run the bundled, simulated example analysis end to end (same as `evmeta run analyses/example.toml`)."""
    run(spec, output=output, quiet=quiet)


@app.command()
def run(
    spec: Annotated[Path, typer.Argument(help="Analysis spec, e.g. analyses/example.toml.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Report folder (default: reports/<name>).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress display.")] = False,
) -> None:
    """Run an analysis spec end to end and write reports/<name>/."""
    from evmeta.analysis.pipeline import run_analysis
    from evmeta.errors import EvmetaError, ExtractionError

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
) -> None:
    """Check the studies sheet against Crossref (DOI) and PubMed (PMID)."""
    from evmeta.review.lookup import run_lookup

    try:
        result, target = run_lookup(workbook, cache=cache, offline=offline, fill=fill_missing)
    except ValueError as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(2) from None
    for message in result.messages():
        typer.echo(message)
    checked = int((result.rows["source"] != "").sum())
    typer.echo(
        f"{checked} of {len(result.rows)} studies found; {len(result.messages())} message(s); "
        f"{result.requests_made} request(s)"
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
) -> None:
    """Compare two extractions (A B -o reconciliation.xlsx), or apply decisions (--apply FILE)."""
    from evmeta.errors import ExtractionError
    from evmeta.review.reconcile import apply_decisions, write_reconciliation
    from evmeta.review.reconcile import reconcile as compare_books

    if apply is not None:
        try:
            final = apply_decisions(apply)
        except (ValueError, KeyError, FileNotFoundError) as exc:
            _echo_err(f"error: {exc}")
            raise typer.Exit(1) from None
        typer.echo(f"wrote {final}")
        return
    if not workbooks or len(workbooks) != 2:
        _echo_err("error: give two workbooks (reviewer A, reviewer B), or --apply reconciliation.xlsx")
        raise typer.Exit(2)
    try:
        result = compare_books(*workbooks)
    except ExtractionError as exc:
        for problem in exc.problems:
            _echo_err(str(problem))
        raise typer.Exit(2) from None
    path, consensus = write_reconciliation(result, output)
    typer.echo(result.summary())
    typer.echo(f"wrote {path} and {consensus}")


@app.command()
def dedupe(
    export: Annotated[
        Path, typer.Argument(help="Search export: RIS (.ris), PubMed MEDLINE (.nbib/.txt) or CSV.")
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="CSV to write.")] = Path("deduplicated.csv"),
) -> None:
    """Cluster duplicate search records; write every record with cluster_id, keep and score."""
    from evmeta.review.dedupe import dedupe_file

    if not export.exists():
        _echo_err(f"error: {export} does not exist")
        raise typer.Exit(2)
    try:
        result = dedupe_file(export, output)
    except ValueError as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(2) from None
    for name, value in result.counts.items():
        typer.echo(f"{name.replace('_', ' ')}: {value}")
    typer.echo(f"wrote {output} and {output.with_suffix('.prisma.json')}")


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
