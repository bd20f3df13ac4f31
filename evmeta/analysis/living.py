"""The living review's refit: every analysis spec of a project, run again on a new
extraction version, summarized, logged, and compared with the previous run.

For each active spec of the project, ``refit_project`` writes a copy of the spec whose
extraction is the project's version file and whose report goes to
``reports/<name>/v<NNN>/`` (``analyses/<name>.v<NNN>.toml``; its ``[prisma]`` and
``[validation]`` sections name files outside the project and are left out, the project draws
its own flow diagram), runs it with :func:`evmeta.analysis.pipeline.run_analysis`, stores a
summary (pooled estimate with CI and PI, subgroup and moderator terms, studies, comparisons)
with the run, and writes the what-changed report (:mod:`evmeta.analysis.living_report`).

The cumulative meta-analysis by search date pools, for each search date, the comparisons of
the studies first found by a search on or before that date (a study is found when a record
of its cluster is; records are matched to studies by the studies sheet's record_id, else DOI)
with the spec's estimator and test (:func:`evmeta.models.frequentist.meta.meta_analysis`, the
routine the pipeline's random-effects model uses), so the last step equals the run's pooled
estimate when every study is matched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from evmeta.project.errors import ProjectError
from evmeta.project.project import Project

#: Spec sections that name files outside the project (not used by a project refit).
OUTSIDE_SECTIONS = ("prisma", "validation")


@dataclass
class Refit:
    """One spec refitted on one extraction version."""

    spec: str
    run_id: int
    status: str
    report: Path | None = None
    changes: list[Path] = field(default_factory=list)
    message: str = ""


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() else json.dumps(name)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise ProjectError(f"cannot write the spec value {value!r} back to TOML")


def toml_text(data: dict[str, Any]) -> str:
    """TOML for a spec as read by ``tomllib`` (tables of scalars, lists and inline tables)."""
    lines: list[str] = []
    for section, body in data.items():
        if not isinstance(body, dict):
            lines.append(f"{_key(section)} = {_value(body)}")
            continue
        lines.append(f"\n[{_key(section)}]")
        lines += [f"{_key(k)} = {_value(v)}" for k, v in body.items()]
    return "\n".join(lines).lstrip() + "\n"


def derived_spec(project: Project, spec: Any, version: Any, *, force: bool = False) -> tuple[Path, Path]:
    """Write the spec of one refit; return (spec path, report folder)."""
    from evmeta._paths import check_output

    data = tomllib.loads(spec.toml)
    for section in OUTSIDE_SECTIONS:
        data.pop(section, None)
    out = project.path("reports", spec.name, f"v{version.version:03d}")
    if out.exists() and any(out.iterdir()) and not force:
        raise ProjectError(f"{out} already holds a report; use --force to replace it")
    data["analysis"]["extraction"] = str(project.path("extraction", version.stored_path))
    data["analysis"]["output"] = str(out)
    path = check_output(project.path("analyses", f"{spec.name}.v{version.version:03d}.toml"), force=force)
    path.write_text(
        f"# written by `evmeta update --extraction` from the project's spec {spec.name!r} "
        f"(sha256 {spec.sha256[:12]}); edit the registered spec, not this file\n" + toml_text(data),
        encoding="utf-8",
    )
    return path, out


def _rows(frame: pd.DataFrame, models: tuple[str, ...]) -> list[dict[str, Any]]:
    keep = frame[frame["model"].str.startswith(models)]
    return [
        {str(k): (None if pd.isna(v) else v) for k, v in row.items()}
        for row in keep[["model", "term", "estimate", "ci_low", "ci_high", "k"]].to_dict("records")
    ]


def summarize(run: Any) -> dict[str, Any]:
    """What the what-changed report compares: studies, comparisons, pooled estimate with its
    CI and PI, subgroup and moderator terms, subgroup tests, the run's notes."""
    from evmeta.report.results import tidy_results

    table = run.tables.pooled
    main = run.models.main
    pooled = {k: main.to_dict().get(k) for k in ("k", "estimate", "se", "ci_low", "ci_high", "pi_low",
                                                 "pi_high", "tau2", "i2", "method", "test", "measure", "level")}  # fmt: skip
    tests = run.tables.subgroup_tests
    return {
        "studies": sorted(map(str, table["study_id"].unique())),
        "comparisons": sorted(map(str, table["comparison_id"])),
        "pooled": pooled,
        "terms": _rows(tidy_results(run.models), ("subgroup:", "meta_regression", "multilevel_regression")),
        "subgroup_tests": [] if tests is None else tests.to_dict("records"),
        "notes": list(run.notes),
    }


def study_search_dates(project: Project, studies: pd.DataFrame) -> tuple[dict[str, dt.date], list[str]]:
    """First search date of each study (record_id, else DOI, to the project's records)."""
    from sqlalchemy import select

    from evmeta.project.models import Record, SearchExport
    from evmeta.review.dedupe import normalize_doi

    with project.engine.connect() as connection:
        rows = connection.execute(
            select(Record.id, Record.cluster_id, Record.doi, SearchExport.searched_on).join(SearchExport)
        ).all()
    first: dict[int, dt.date] = {}
    for row in rows:
        first[row.cluster_id] = min(first.get(row.cluster_id, row.searched_on), row.searched_on)
    by_id = {row.id: row.cluster_id for row in rows}
    by_doi = {normalize_doi(row.doi): row.cluster_id for row in rows if normalize_doi(row.doi)}
    dates, unmatched = {}, []
    for study in studies.to_dict("records"):
        ids = [
            int(x)
            for x in str(study.get("record_id") or "").replace(";", ",").split(",")
            if x.strip().isdigit()
        ]
        clusters = [by_id[i] for i in ids if i in by_id] or (
            [by_doi[d]] if (d := normalize_doi(str(study.get("doi") or ""))) in by_doi else []
        )
        if clusters:
            dates[str(study["study_id"])] = min(first[c] for c in clusters)
        else:
            unmatched.append(str(study["study_id"]))
    return dates, unmatched


def cumulative_by_search_date(
    table: pd.DataFrame, dates: dict[str, dt.date], *, method: str, test: str, level: float = 0.95
) -> pd.DataFrame:
    """One row per search date: studies and comparisons found by then and their pooled
    estimate (see the module docstring). With one comparison the row gives its own effect
    and says so; comparisons of studies matched to no search are left out (``unmatched``)."""
    from evmeta.errors import ModelError
    from evmeta.models.frequentist.meta import meta_analysis

    found = table.assign(_found=table["study_id"].astype(str).map(dates))
    rows = []
    for date in sorted(set(dates.values())):
        take = found[found["_found"].notna() & (found["_found"] <= date)]
        row: dict[str, Any] = {
            "searched_on": date.isoformat(),
            "studies": take["study_id"].nunique(),
            "k": len(take),
        }
        if len(take) >= 2:
            try:
                fit = meta_analysis(take, method=method, test=test, level=level)
            except ModelError as exc:
                row["note"] = f"not pooled: {exc}"
            else:
                row.update(estimate=fit.estimate, ci_low=fit.ci_low, ci_high=fit.ci_high,
                           pi_low=fit.pi_low, pi_high=fit.pi_high, tau2=fit.tau2, i2=fit.i2)  # fmt: skip
        elif len(take) == 1:
            row.update(
                estimate=float(take["yi"].iloc[0]), note="one comparison: its own effect, nothing pooled"
            )
        else:
            row["note"] = "no comparison of the analysis came from these searches yet"
        rows.append(row)
    columns = [
        "searched_on",
        "studies",
        "k",
        "estimate",
        "ci_low",
        "ci_high",
        "pi_low",
        "pi_high",
        "tau2",
        "i2",
        "note",
    ]
    out = pd.DataFrame(rows).reindex(columns=columns)
    out.attrs["unmatched"] = int(found["_found"].isna().sum())
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refit_one(project: Project, spec: Any, version: Any, *, force: bool) -> Refit:
    from evmeta.analysis.living_report import write_what_changed
    from evmeta.analysis.pipeline import run_analysis
    from evmeta.errors import EvmetaError
    from evmeta.project.history import project_state
    from evmeta.project.prisma import updated_prisma
    from evmeta.project.runs import finish_run, previous_results, start_run

    spec_path, out = derived_spec(project, spec, version, force=force)
    extraction = project.path("extraction", version.stored_path)

    inputs = {"spec": spec.sha256, "derived_spec": _sha256(spec_path), "extraction": version.sha256,
              "extraction_version": version.version, "project_state": project_state(project)}  # fmt: skip
    run_id = start_run(project, spec.id, version.id, inputs)
    try:
        run = run_analysis(spec_path, quiet=True)
        summary = summarize(run)
        dates, unmatched = study_search_dates(project, run_extraction_studies(extraction))
        freq = run.spec.frequentist
        cumulative = cumulative_by_search_date(
            run.tables.pooled, dates, method=freq.method, test=freq.test, level=freq.level
        )
        summary["unmatched_studies"] = sorted(set(unmatched) & set(summary["studies"]))
        state = project_state(project)
        changes = write_what_changed(
            out, spec.name, version.version, summary, previous_results(project, spec.name, run_id),
            cumulative, updated_prisma(project, version.version), state, force=force,
        )  # fmt: skip
    except EvmetaError as exc:
        finish_run(project, run_id, status="failed", message=str(exc))
        return Refit(spec.name, run_id, "failed", message=str(exc))
    except BaseException as exc:  # a bug or an interrupt: log the run as failed, then surface it
        finish_run(project, run_id, status="failed", message=f"{type(exc).__name__}: {exc}")
        raise
    finish_run(project, run_id, status="done", results=summary, report_path=str(out / "report.html"),
               changes_path=str(changes[0]))  # fmt: skip
    return Refit(spec.name, run_id, "done", out / "report.html", changes)


def run_extraction_studies(path: Path) -> pd.DataFrame:
    """The studies sheet of an extraction version (study_id, record_id, doi)."""
    from evmeta.schema.validation.validate import read_extraction

    return read_extraction(path).studies


def refit_project(project: Project, version: int, *, force: bool = False) -> list[Refit]:
    """Refit every active spec of the project on extraction ``version`` (see the module
    docstring); a spec that fails is logged as failed with its message, the others still run."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from evmeta.project.models import ExtractionVersion
    from evmeta.project.runs import active_specs

    with Session(project.engine, expire_on_commit=False) as session:
        row = session.scalars(select(ExtractionVersion).where(ExtractionVersion.version == version)).one()
    return [_refit_one(project, spec, row, force=force) for spec in active_specs(project)]


__all__ = ["Refit", "cumulative_by_search_date", "derived_spec", "refit_project", "summarize", "toml_text"]
