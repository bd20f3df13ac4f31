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
def demo(
    workbook: Annotated[Path, typer.Option(help="Extraction workbook.")] = Path("extraction/example.xlsx"),
) -> None:
    """Run the bundled example: validate the simulated example workbook and summarize it."""
    from evmeta.errors import ExtractionError
    from evmeta.schema.validate import read_extraction

    try:
        extraction = read_extraction(workbook)
    except ExtractionError as exc:
        for problem in exc.problems:
            _echo_err(str(problem))
        raise typer.Exit(1) from None
    typer.echo(extraction.summary())
    for note in extraction.notes:
        typer.echo(f"note: {note}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        _echo_err("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
