"""The editor's command: export-r (the run's frequentist models as an R script)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evmeta.cli._app import ForceOption, _echo_err, app


@app.command("export-r")
def export_r(
    spec: Annotated[Path, typer.Argument(help="Analysis spec, e.g. analyses/example.toml.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the R script and its data.")],
    force: ForceOption = False,
) -> None:
    """Write an R script (metafor, clubSandwich) and its data that reproduce the run's
    frequentist models; run it with `Rscript OUTPUT/evmeta_models.R`, which writes
    OUTPUT/metafor_results.json (model, term, estimate, se, ci_low, ci_high, p, k, test)."""
    from evmeta.analysis.export_r import export_r as write_export
    from evmeta.errors import EvmetaError, ExtractionError

    try:
        exported = write_export(spec, output, overwrite=force)
    except ExtractionError as exc:
        for problem in exc.problems:
            if problem.severity == "error":
                _echo_err(str(problem))
        _echo_err("the extraction has errors; fix them (evmeta validate lists them) and run again")
        raise typer.Exit(1) from None
    except EvmetaError as exc:
        _echo_err(f"error: {exc}")
        raise typer.Exit(2) from None
    typer.echo(f"wrote {exported.script} and {exported.data} ({len(exported.models)} models)")
    typer.echo(f"reproduce in R: Rscript {exported.script}")
