"""Reviewer commands on extraction workbooks: template, validate, harmonize, import-wide."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from evmeta.cli._app import ForceOption, _echo_err, _guarded, _refusals, _require_xlsx, app


@app.command()
def template(
    path: Annotated[Path, typer.Argument(help="Workbook to write (.xlsx), or a folder with --csv.")],
    csv: Annotated[
        bool, typer.Option("--csv", help="Write one CSV file per sheet into the folder PATH.")
    ] = False,
    force: ForceOption = False,
) -> None:
    """Write an empty extraction template (workbook with dropdowns, or CSV files)."""
    from evmeta._paths import check_output
    from evmeta.schema.columns import SHEETS
    from evmeta.schema.template import write_template

    if not csv:
        _require_xlsx(path, "the template", alternative=" (or use --csv for a folder of CSV files)")
        with _guarded([path], force=force) as staging:
            write_template(staging.path(path))
        typer.echo(f"wrote {path}")
        return
    with _refusals():
        check_output(path, folder=True)
    sheets = [path / f"{sheet}.csv" for sheet in SHEETS]
    with _guarded(sheets, force=force) as staging:
        write_template(staging.path(sheets[0]).parent, csv_dir=True)
    typer.echo(f"wrote {path}")


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="Extraction workbook (.xlsx) or folder of CSV files.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the problems as JSON.")] = False,
    summary: Annotated[bool, typer.Option("--summary", help="Also print rows per sheet.")] = False,
) -> None:
    """Check an extraction; exit 0 = no errors, 1 = errors found, 2 = not readable."""
    from evmeta.schema.validation.validate import sort_problems, validate_extraction

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
    smd_variant: Annotated[str, typer.Option(help="SMD: exact (metafor) or revman (RevMan 5).")] = "exact",
    rom_correct: Annotated[
        bool, typer.Option(help="ROM: Lajeunesse's bias correction (metafor 5's default).")
    ] = False,
    binary_to_smd: Annotated[
        str, typer.Option(help="SMD: none, or hasselblad_hedges (log odds ratios on the SMD scale).")
    ] = "none",
    force: ForceOption = False,
) -> None:
    """Write one row per comparison (yi, vi, moderators) and exclusions.csv beside it."""
    from evmeta.sheets.export import write_csv

    exclusions_path = output.parent / "exclusions.csv"
    notes_path = output.parent / "validation_notes.csv"
    with _guarded([output, exclusions_path, notes_path], inputs=[workbook], force=force) as staging:
        options = dict(smd_variant=smd_variant, rom_correct=rom_correct, binary_to_smd=binary_to_smd)
        comparisons = _harmonized(workbook, measure, outcome, timepoint, shared_control, options)
        write_csv(comparisons.table, staging.path(output))
        write_csv(comparisons.exclusions, staging.path(exclusions_path))
        write_csv(comparisons.validation_notes, staging.path(notes_path))
    typer.echo(comparisons.summary())
    typer.echo(
        f"wrote {output}, {exclusions_path} and {notes_path} "
        f"({len(comparisons.validation_notes)} validation notes)"
    )


def _harmonized(workbook: Path, measure: str, outcome, timepoint: str, shared_control: str, options=None):
    """The comparisons of ``harmonize``; errors in the data exit 1, unusable input 2."""
    from evmeta.comparisons import build_comparisons
    from evmeta.errors import EvmetaError, ExtractionError
    from evmeta.harmonize.effect_options import EffectOptions
    from evmeta.schema.validation.validate import read_extraction

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
            extraction,
            measure,
            outcome=outcome or None,
            timepoint=point,
            shared_control=shared_control,
            effect_options=EffectOptions(**(options or {})),
        )
    except ExtractionError as exc:
        for problem in exc.problems:
            _echo_err(f"error: {problem}")
        raise typer.Exit(1) from None
    except EvmetaError as exc:  # only errors raised on purpose; a bug surfaces as a traceback
        _echo_err(f"error: {exc}")
        raise typer.Exit(2) from None
    return comparisons


@app.command("import-wide")
def import_wide(
    table: Annotated[Path, typer.Argument(help="Comparison table: CSV or .xlsx, one row per comparison.")],
    map_path: Annotated[
        Path,
        typer.Option(
            "--map",
            help="Map (TOML): [columns], [constants], [options], [moderators], [risk_of_bias] "
            "(docs/import_wide.md).",
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Extraction workbook to write (.xlsx).")],
    sheet: Annotated[
        str | None, typer.Option("--sheet", help="Sheet of an .xlsx table (default: the first).")
    ] = None,
    force: ForceOption = False,
) -> None:
    """Import a wide comparison table (treatment and control side by side) into a workbook.

    Writes OUTPUT and, beside it, OUTPUT's name with .import_log.csv (one line per table row,
    then one per table column the map does not read).
    """
    from evmeta.errors import EvmetaError
    from evmeta.schema.wide_import import import_wide as run_import

    _require_xlsx(output, "the imported extraction")
    log = output.with_name(output.stem + ".import_log.csv")
    with _guarded([output, log], inputs=[table, map_path], force=force) as staging:
        try:
            result = run_import(table, map_path, staging.path(output), sheet=sheet)
        except EvmetaError as exc:
            _echo_err(f"error: {exc}")
            raise typer.Exit(2) from None
    typer.echo(result.summary())
    typer.echo(f"wrote {output} and {log}; check it with: evmeta validate {output}")
