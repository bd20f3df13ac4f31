"""Render ``report.html``: one self-contained file (figures inlined as SVG, no network)."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pandas as pd

from evmeta.report.bias_section import bias_context
from evmeta.report.methods import REFERENCES, methods_paragraph


def _svg(path: Path | None) -> str:
    if path is None or not path.exists():
        return ""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"<\?xml[^>]*\?>", "", text)
    text = re.sub(r"<!DOCTYPE[^>]*>", "", text, flags=re.DOTALL)
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    # Scale to the page width, keep the aspect ratio.
    return re.sub(r"<svg ", '<svg style="max-width:100%;height:auto" ', text, count=1).strip()


def _table(
    frame: pd.DataFrame | None, digits: int = 3, index: bool = False, max_rows: int | None = None
) -> str:
    if frame is None or len(frame) == 0:
        return "<p><em>none</em></p>"
    shown = frame if max_rows is None else frame.head(max_rows)
    out = shown.to_html(
        index=index,
        float_format=lambda x: f"{x:.{digits}f}",
        na_rep="",
        border=0,
        classes="table",
        escape=True,
    )
    if max_rows is not None and len(frame) > max_rows:
        out += f"<p><em>first {max_rows} of {len(frame)} rows; all in the CSV files</em></p>"
    return out


def _interval(mean: float, lower: float, upper: float) -> str:
    return f"{mean:.2f} [{lower:.2f}, {upper:.2f}]"


def _contrast_sentences(run: Any) -> list[str]:
    frame = run.tables.get("contrasts:isolation_method")
    if frame is None:
        return []
    return [
        f"{row['level']} minus {row['versus']}: {_interval(row['mean'], row['lower'], row['upper'])}, "
        f"P(&gt; 0) = {row['p_gt_0']:.2f}"
        for _, row in frame.iterrows()
    ]


def write_report(run: Any) -> Path:
    """Write ``report.html`` into the run's output folder and return its path."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("evmeta.report", "templates"), autoescape=True)
    template = env.get_template("report.html.j2")
    table = run.tables["comparisons"]
    main = run.models["random_effects"]
    studies = (
        table[["study_id", "first_author", "year"]]
        .drop_duplicates("study_id")
        .sort_values(["first_author", "year"])
    )
    bayes = run.models.get("bayesian")
    figures = {
        name: _svg(next((p for p in paths if p.suffix == ".svg"), None))
        for name, paths in run.figures.items()
    }
    coverage = None
    if run.recovery is not None and len(run.recovery):
        covered = int(run.recovery["covered"].sum())
        coverage = (
            f"{covered} of {len(run.recovery)} generating effects (isolation-method contrasts and the quality slope) "
            f"lie within their 95% credible intervals"
            + (": the model recovers the simulated truth." if covered == len(run.recovery) else ".")
        )
    subgroup_blocks = []
    for key, model in run.models.items():
        if key.startswith("subgroup:"):
            subgroup_blocks.append(
                {
                    "by": model.by,
                    "table": _table(model.table.reset_index(), 3),
                    "test": html.escape(model.summary().splitlines()[-2 if not model.skipped else -3]),
                }
            )
    context = {
        "title": run.spec.analysis.title or run.spec.analysis.name,
        "question": run.spec.analysis.question,
        "methods": methods_paragraph(run),
        "references": REFERENCES,
        "k": main.k,
        "n_studies": table["study_id"].nunique(),
        "n_experiments": table["experiment_id"].nunique(),
        "main": {
            "estimate": _interval(main.estimate, main.ci_low, main.ci_high),
            "pi": f"[{main.pi_low:.2f}, {main.pi_high:.2f}]",
            "tau2": f"{main.tau2:.3f}",
            "i2": f"{main.i2:.1f}",
            "q": f"{main.q:.2f}",
            "q_df": main.q_df,
            "q_p": f"{main.q_pvalue:.3g}",
            "method": main.method,
            "test": main.test,
        },
        "models_table": _table(_model_overview(run), 3),
        "meta_regression": _table(run.tables.get("results:meta_regression"), 3),
        "multilevel": _table(run.tables.get("results:multilevel_regression"), 3),
        "subgroups": subgroup_blocks,
        "subgroup_tests": _table(run.tables.get("subgroup_tests"), 4),
        "bayes": bayes is not None,
        "bayes_summary": _table(
            bayes.summary().table.reset_index(names="parameter") if bayes is not None else None, 3
        ),
        "bayes_converged": bayes.converged if bayes is not None else None,
        "bayes_method": bayes.method_used if bayes is not None else "",
        "diagnostics": bayes.diagnostics if bayes is not None else {},
        "contrasts": _contrast_sentences(run),
        "contrast_table": _table(run.tables.get("contrasts:isolation_method"), 3),
        "bayes_factors": _table(run.tables.get("bayes_factors"), 3),
        "recovery": _table(run.recovery, 3),
        "coverage": coverage,
        "bias": _table(run.tables.get("bias"), 3),
        "sensitivity": _table(run.tables.get("sensitivity"), 3),
        "prior_sensitivity": _table(run.tables.get("prior_sensitivity"), 3, max_rows=60),
        "exclusions": _table(run.exclusions, 0, max_rows=400),
        "n_exclusions": len(run.exclusions),
        "studies": [f"{r.first_author} {r.year} ({r.study_id})" for r in studies.itertuples()],
        "notes": run.notes,
        "figures": figures,
        "provenance": run.provenance,
        "prisma_counts": _table(run.tables.get("prisma"), 0) if "prisma" in run.tables else "",
        "evidence": bias_context(run),
    }
    path = run.output / "report.html"
    path.write_text(template.render(**context), encoding="utf-8")
    return path


def _model_overview(run: Any) -> pd.DataFrame:
    rows = []
    for name in ["random_effects", "multilevel"]:
        model = run.models.get(name)
        if model is not None:
            rows.append(
                {
                    "model": name.replace("_", " "),
                    "k": model.k,
                    "estimate": model.estimate,
                    "ci_low": model.ci_low,
                    "ci_high": model.ci_high,
                    "pi_low": model.pi_low,
                    "pi_high": model.pi_high,
                    "I2 (%)": model.i2,
                }
            )
    return pd.DataFrame(rows)
