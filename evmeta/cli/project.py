"""The living review: ``evmeta init DIR``, ``evmeta update DIR --search/--screening/--extraction``,
``evmeta log DIR``. Workbooks in, workbooks out; the project's database sits behind them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from evmeta.cli._app import ForceOption, _echo_err, _print_problems, _refusals, app

if TYPE_CHECKING:
    from evmeta.analysis.living import Refit
    from evmeta.project.project import Project

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database",
        help="Database URL (sqlite:///PATH or postgresql://USER@HOST/DB); default $EVMETA_DATABASE_URL, "
        "else DIR/project.sqlite.",
    ),
]


@app.command("init")
def init_command(
    folder: Annotated[Path, typer.Argument(help="Folder of the new review project.")],
    database: DatabaseOption = None,
    spec: Annotated[
        list[Path] | None, typer.Option("--spec", help="Analysis spec the project refits (repeatable).")
    ] = None,
) -> None:
    """Create a review project: folders for workbooks and reports, and its database."""
    from evmeta.project.database import safe_url
    from evmeta.project.project import init_project
    from evmeta.project.runs import add_spec

    with _refusals(), init_project(folder, database=database) as project:
        for path in spec or []:
            add_spec(project, path)
        typer.echo(f"created review project {project.folder} (database {safe_url(project.url)})")
        for path in spec or []:
            typer.echo(f"registered analysis spec {path}")


def _search_step(project: Project, exports: list[Path], searched_on: str | None, force: bool) -> None:
    from evmeta.project.update import update_searches

    try:
        when = dt.date.fromisoformat(searched_on) if searched_on else None
    except ValueError:
        _echo_err(f"error: --searched-on must be a date as YYYY-MM-DD, got {searched_on!r}")
        raise typer.Exit(2) from None
    step = update_searches(project, exports, searched_on=when, force=force)
    for export in step.update.exports:
        if export.already_held:
            typer.echo(f"{export.file_name}: {export.already_held}; nothing added")
        else:
            typer.echo(
                f"{export.file_name} ({export.database}): {export.n_records} records, {export.n_new_unique} new unique"
            )
    for warning in step.update.warnings:
        _echo_err(f"warning: {warning}")
    result = step.update
    typer.echo(
        f"duplicates of records already held: {result.duplicates_of_held}; duplicates among the new records: "
        f"{result.duplicates_within}; new unique records: {result.n_new_unique}"
    )
    if result.merged_held_clusters:
        typer.echo(
            f"note: {result.merged_held_clusters} new record(s) matched two held works; held works were not merged"
        )
    if step.sheet is not None:
        typer.echo(f"wrote {step.sheet} (the new records to screen) and {step.deduplicated}")


def _screening_step(project: Project, sheet: Path, reviewers: list[str] | None) -> None:
    from evmeta.project.screening import record_screening
    from evmeta.review.screening import ScreeningError

    names = tuple(reviewers or ["reviewer_1", "reviewer_2"])
    if len(names) != 2:
        _echo_err("error: give --reviewer twice (reviewer 1, then reviewer 2), or not at all")
        raise typer.Exit(2)
    try:
        batch = record_screening(project, sheet, reviewers=names)
    except ScreeningError as exc:
        _print_problems(exc.problems)
        raise typer.Exit(1) from None
    if batch.already_recorded:
        typer.echo(f"{sheet.name}: {batch.already_recorded}; nothing added")
    else:
        typer.echo(
            f"{sheet.name}: batch {batch.batch_id}, {batch.recorded} decision(s) recorded, {batch.unchanged} unchanged"
        )


def _extraction_step(project: Project, workbook: Path, force: bool) -> None:
    from evmeta.analysis.living import refit_project
    from evmeta.errors import ExtractionError
    from evmeta.project.extraction import import_extraction

    try:
        imported = import_extraction(project, workbook)
    except ExtractionError as exc:
        _print_problems(exc.problems)
        raise typer.Exit(1) from None
    if imported.version is None:
        typer.echo(f"{workbook.name}: {imported.already_imported}; nothing refitted")
        return
    typer.echo(
        f"{workbook.name}: extraction version {imported.version} ({imported.path.name}), {imported.n_studies} studies; "
        f"cells: {imported.added} new, {imported.changed} changed, {imported.removed} emptied"
    )
    _report_refits(refit_project(project, imported.version, force=force))


def _refit_step(project: Project, force: bool) -> None:
    from sqlalchemy import func, select

    from evmeta.analysis.living import refit_project
    from evmeta.project.models import ExtractionVersion

    with project.engine.connect() as connection:
        version = connection.execute(select(func.max(ExtractionVersion.version))).scalar_one()
    if version is None:
        _echo_err("error: --refit needs an extraction version first (evmeta update DIR --extraction FILE)")
        raise typer.Exit(2)
    _report_refits(refit_project(project, version, force=force))


def _report_refits(refits: list[Refit]) -> None:
    if not refits:
        typer.echo("no analysis spec registered (evmeta update DIR --spec FILE); nothing refitted")
    for refit in refits:
        if refit.status == "done":
            typer.echo(f"{refit.spec}: refitted; wrote {refit.report} and {refit.changes[0]}")
        else:
            _echo_err(f"error: {refit.spec}: refit failed (logged as run {refit.run_id}): {refit.message}")
    if any(r.status != "done" for r in refits):
        raise typer.Exit(1)


@app.command("update")
def update_command(
    folder: Annotated[Path, typer.Argument(help="Folder of the review project.")],
    search: Annotated[
        list[Path] | None,
        typer.Option("--search", help="New search export (repeatable): RIS, MEDLINE or CSV."),
    ] = None,
    more_search: Annotated[
        list[Path] | None, typer.Argument(help="Further search exports (after --search).", show_default=False)
    ] = None,
    screening: Annotated[Path | None, typer.Option("--screening", help="Filled screening workbook.")] = None,
    extraction: Annotated[
        Path | None,
        typer.Option("--extraction", help="Extraction workbook: imported as a new version, then refitted."),
    ] = None,
    spec: Annotated[
        list[Path] | None, typer.Option("--spec", help="Register an analysis spec (repeatable).")
    ] = None,
    searched_on: Annotated[
        str | None,
        typer.Option("--searched-on", help="Date the searches were run (YYYY-MM-DD; default today)."),
    ] = None,
    reviewer: Annotated[
        list[str] | None, typer.Option("--reviewer", help="With --screening: names of reviewer 1 and 2.")
    ] = None,
    refit: Annotated[
        bool, typer.Option("--refit", help="Refit the specs on the newest extraction version again.")
    ] = False,
    database: DatabaseOption = None,
    force: ForceOption = False,
) -> None:
    """Add new searches, screening decisions or an extraction version to a review project."""
    from evmeta.project.project import open_project
    from evmeta.project.runs import add_spec

    exports = [*(search or []), *(more_search or [])]
    if not (exports or screening or extraction or spec or refit):
        _echo_err("error: give --search FILE..., --screening FILE, --extraction FILE, --spec FILE or --refit")
        raise typer.Exit(2)
    with _refusals(), open_project(folder, database=database) as project:
        for path in spec or []:
            name, new = add_spec(project, path)
            typer.echo(f"analysis spec {name}: {'registered' if new else 'already registered'}")
        if exports:
            _search_step(project, exports, searched_on, force)
        if screening is not None:
            _screening_step(project, screening, reviewer)
        if extraction is not None:
            _extraction_step(project, extraction, force)
        elif refit:
            _refit_step(project, force)


@app.command("log")
def log_command(
    folder: Annotated[Path, typer.Argument(help="Folder of the review project.")],
    database: DatabaseOption = None,
) -> None:
    """List every search import, screening batch, extraction version and analysis run."""
    from evmeta.project.history import log_entries, project_state
    from evmeta.project.project import open_project

    with _refusals(), open_project(folder, database=database) as project:
        state = project_state(project)
        typer.echo(
            f"project {state['project_uuid']} (database {state['database']}, schema {state['revision']})"
        )
        typer.echo(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in state["counts"].items()))
        for entry in log_entries(project):
            who = f" [{entry['who']}]" if entry["who"] else ""
            typer.echo(
                f"{entry['when']:%Y-%m-%d %H:%M:%S} {entry['kind']:<10} #{entry['id']}{who} {entry['what']}"
            )
