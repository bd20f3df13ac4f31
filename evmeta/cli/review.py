"""Systematic-review chores: lookup, reconcile, dedupe, screen-sheet, prisma, digitized."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from evmeta.cli._app import (
    ForceOption,
    _echo_err,
    _guarded,
    _print_problems,
    _require_xlsx,
    app,
)

if TYPE_CHECKING:
    from evmeta.review.screening import Screening


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
    deadline: Annotated[
        float,
        typer.Option(
            "--deadline",
            "--timeout",
            help="Stop the whole look-up after this many seconds; unreached studies are listed.",
        ),
    ] = 300.0,
    request_timeout: Annotated[
        float, typer.Option(help="Give up one request (retries included) after this many seconds.")
    ] = 30.0,
    force: ForceOption = False,
) -> None:
    """Check the studies sheet against Crossref (DOI) and PubMed (PMID).

    Exit 0 when the services answered (whatever they said), 3 when no study could be
    checked because they did not answer; after 3 time-outs or failed connections in a row a
    service is not asked again and the studies left are listed.
    """
    from evmeta.review.lookup import run_lookup

    if not (0 < deadline < float("inf")) or not (0 < request_timeout < float("inf")):
        _echo_err("error: --deadline and --request-timeout must be positive numbers of seconds")
        raise typer.Exit(2)
    filled = workbook.with_name(workbook.stem + ".filled.xlsx")
    if fill_missing and workbook.suffix.lower() != ".xlsx":
        _echo_err(f"error: --fill-missing writes a workbook; {workbook} is not an .xlsx workbook")
        raise typer.Exit(2)
    with _guarded([filled] if fill_missing else [], inputs=[workbook], force=force) as staging:
        result, target = run_lookup(
            workbook,
            cache=cache,
            offline=offline,
            fill=staging.path(filled) if fill_missing else False,
            timeout=deadline,
            request_timeout=request_timeout,
        )
    target = filled if target is not None else None
    _report_lookup(result, deadline)
    if target is not None:
        typer.echo(f"wrote {target}")
    if result.unreachable:
        _echo_err(
            "error: no study could be checked: the bibliographic service did not answer "
            "(no network, or the service is down); nothing was compared. Try again later, or "
            "use --offline with a cache."
        )
        raise typer.Exit(3)


def _report_lookup(result, deadline: float) -> None:
    """Print each row's finding, the counts, and one sentence per reason studies were skipped."""
    from evmeta.review.lookup import BREAKER_FAILURES

    for message in result.messages():
        typer.echo(message)
    found = int((result.rows["source"] != "").sum())
    typer.echo(
        f"{found} of {len(result.rows)} studies found ({result.n_checked} checked); "
        f"{len(result.messages())} message(s); {result.requests_made} request(s)"
    )
    for service, base in result.down.items():
        typer.echo(
            f"{service} ({base}) did not answer {BREAKER_FAILURES} requests in a row "
            "(time-outs or failed connections); it was not asked again"
        )
    if result.skipped:
        typer.echo(
            f"{len(result.skipped)} studies not checked (service not answering): " + ", ".join(result.skipped)
        )
    if result.not_checked:
        typer.echo(
            f"{len(result.not_checked)} studies not checked (deadline of {deadline:g} s reached): "
            + ", ".join(result.not_checked)
        )


@app.command()
def reconcile(
    workbooks: Annotated[
        list[Path] | None, typer.Argument(help="The two reviewers' workbooks, A then B.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "-o",
            "--output",
            help="Workbook to write: the reconciliation (default reconciliation.xlsx), or with "
            "--apply the final workbook (default <FILE>.final.xlsx).",
        ),
    ] = None,
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
        # -o names the final workbook; without it, it sits next to the reconciliation file.
        final = output if output is not None else apply.with_name(apply.stem + ".final.xlsx")
        _require_xlsx(final, "the final workbook")
        consensus = apply.with_name(apply.stem + ".consensus.xlsx")
        from evmeta.errors import EvmetaError

        with _guarded([final], inputs=[apply, consensus, *(workbooks or [])], force=force) as staging:
            try:
                apply_decisions(apply, staging.path(final))
            except EvmetaError as exc:  # undecided discrepancies or a broken file: exit 1
                _echo_err(f"error: {exc}")
                raise typer.Exit(1) from None
        typer.echo(f"wrote {final}")
        return
    if not workbooks or len(workbooks) != 2:
        _echo_err("error: give two workbooks (reviewer A, reviewer B), or --apply reconciliation.xlsx")
        raise typer.Exit(2)
    output = output if output is not None else Path("reconciliation.xlsx")
    _require_xlsx(output, "the reconciliation")
    consensus = output.with_name(output.stem + ".consensus.xlsx")
    with _guarded([output, consensus], inputs=workbooks, force=force) as staging:
        try:
            result = compare_books(*workbooks)
        except ExtractionError as exc:
            for problem in exc.problems:
                _echo_err(str(problem))
            raise typer.Exit(2) from None
        write_reconciliation(result, staging.path(output))
    typer.echo(result.summary())
    typer.echo(f"wrote {output} and {consensus}")


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

    with _guarded([output, output.with_suffix(".prisma.json")], inputs=list(export), force=force) as staging:
        result = dedupe_file(list(export), staging.path(output))
    for warning in result.warnings:
        _echo_err(f"warning: {warning}")
    for name, value in result.counts.items():
        typer.echo(f"{name.replace('_', ' ')}: {value}")
    typer.echo(f"wrote {output} and {output.with_suffix('.prisma.json')}")


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
    force: ForceOption = False,
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

    inputs = [p for p in (deduplicated, check) if p is not None]
    if check is None and deduplicated is None:
        _echo_err("error: give deduplicated.csv (from `evmeta dedupe`), or --check screening.xlsx")
        raise typer.Exit(2)
    target = output if check is None else studies
    if target is not None:
        _require_xlsx(
            target, "the screening log" if check is None else "the extraction workbook of --studies"
        )
    with _guarded([target] if target is not None else [], inputs=inputs, force=force) as staging:
        screening = None
        try:
            if check is not None:
                screening = read_screening(check)
                if deduplicated is not None:
                    raise_if_errors(check_against_deduplicated(screening, read_deduplicated(deduplicated)))
            elif deduplicated is not None:  # one of the two is given (refused above otherwise)
                write_screening_sheet(deduplicated, staging.path(output))
        except ScreeningError as exc:
            _print_problems(exc.problems)
            raise typer.Exit(1) from None
        except EvmetaError as exc:
            _echo_err(f"error: {exc}")
            raise typer.Exit(2) from None
        if screening is not None:
            _report_screening(screening, staging.path(studies) if studies is not None else None)
    if check is None:
        typer.echo(f"wrote {output}")
    elif studies is not None:
        typer.echo(f"wrote {studies} (studies sheet: one row per included report, with its record_id)")


def _report_screening(screening: Screening, staged: Path | None) -> None:
    """Print the screeners' agreement; write the studies sheet of the included reports."""
    from evmeta.review.screening import included_study_rows, screening_agreement

    stages = {"title_abstract": "title/abstract", "full_text": "full text"}
    for row in screening_agreement(screening).itertuples():
        typer.echo(
            f"{stages[str(row.stage)]}: {row.n_agree} of {row.n_compared} decisions agree "
            f"({row.percent_agreement:.1f}%), Cohen's kappa {row.kappa:.3f}"
        )
    typer.echo(f"{len(screening.table)} records screened, {len(screening.included)} reports included")
    if staged is not None:
        from evmeta.schema.template import write_template

        write_template(staged, data={"studies": included_study_rows(screening)})


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
    force: ForceOption = False,
) -> None:
    """Draw the PRISMA 2020 flow diagram from the review's files; counts also go to <output>.csv."""
    from evmeta.errors import EvmetaError
    from evmeta.plots import save_figure
    from evmeta.plots.prisma import prisma_diagram
    from evmeta.review.prisma import prisma_counts, problems_of
    from evmeta.sheets.export import write_csv

    fmt = output.suffix.lower().lstrip(".")
    if fmt not in {"pdf", "svg", "png", ""}:
        _echo_err(f"error: {output} should end in .pdf, .svg or .png (or have no suffix for all three)")
        raise typer.Exit(2)
    size = _figure_width(width)
    formats = (fmt,) if fmt else ("pdf", "svg", "png")
    stem = output.with_suffix("")
    figures = [stem.with_name(f"{stem.name}.{f}") for f in formats]
    table = stem.with_name(f"{stem.name}.csv")
    inputs = [*search, *(more_search or []), dedupe, screening, extraction, *(register or [])]
    with _guarded([*figures, table], inputs=inputs, force=force) as staging:
        try:
            counts = prisma_counts(
                [*search, *(more_search or [])], dedupe, screening, extraction, registers=register or []
            )
        except EvmetaError as exc:
            _print_problems(problems_of(exc))
            raise typer.Exit(1) from None
        for note in counts.notes:
            typer.echo(f"note: {note}")
        save_figure(prisma_diagram(counts, width=size), staging.path(stem), formats=formats)
        write_csv(counts.to_frame(), staging.path(table))
    typer.echo(f"wrote {', '.join(map(str, figures))} and {table}")


#: Figure widths accepted, in mm (as for the spec's ``[figures] width``).
WIDTH_MM = (20.0, 500.0)


def _figure_width(width: str) -> str | float:
    """``double``, ``single`` or a finite width in mm within :data:`WIDTH_MM`; exit 2 otherwise."""
    import math

    text = width.strip().lower()
    if text in {"double", "single"}:
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and WIDTH_MM[0] <= value <= WIDTH_MM[1]):
        _echo_err(
            f"error: --width must be double, single or a width of {WIDTH_MM[0]:g}-{WIDTH_MM[1]:g} mm, "
            f"got {width!r}"
        )
        raise typer.Exit(2)
    return value


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
    force: ForceOption = False,
) -> None:
    """Outcome rows (arm, mean, sd or sem, data_source=figure) from a WebPlotDigitizer export."""
    from evmeta.review.digitized import DigitizedError, read_digitized
    from evmeta.sheets.export import write_csv

    with _guarded([output], inputs=[file], force=force) as staging:
        try:
            rows = read_digitized(file, kind=kind.strip().lower(), error=error.strip().lower())
        except DigitizedError as exc:
            _echo_err(f"error: {exc}")
            raise typer.Exit(2) from None
        write_csv(rows, staging.path(output))
    typer.echo(f"{len(rows)} arm(s); wrote {output}")
