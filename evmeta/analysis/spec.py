"""Analysis specs: ``analyses/<name>.toml`` describes one analysis as data.

Sections (all but ``[analysis]`` optional, every key has a default):

``[analysis]``      name, title, question, extraction (path relative to the spec), output,
                    intervention (what the treatment is, default "MSC-EVs": figure and report
                    words), intervention_short (default "EV" / "treated": "n EV/ctrl")
``[comparisons]``   measure, outcomes, timepoint, shared_control, smd_variant, rom_correct,
                    binary_to_smd (docs/effect_sizes.md), combine_outcomes, correlation
                    (correlated effects: :mod:`evmeta.analysis.spec_correlation`)
``[filters]``       species, disease_model, isolation_family, min_quality_score,
                    low_risk_of_bias_only
``[moderators]``    reference levels of categorical moderators, e.g. isolation_method = "UC"
``[frequentist]``   method, test, level, subgroups, meta_regression, multilevel, robust, scale
                    (location-scale model, e.g. ``"~ isolation_method"``), thresholds
``[bayesian]``      enabled, mods, random, method, likelihood, draws, tune, chains, seed, priors
                    (a ``[bayesian.priors]`` table, or ``"preclinical"``: the preclinical
                    heterogeneity prior on every tau with the default coefficient priors)
``[bias]``          mods (moderators of the bias-averaged ensemble, e.g. ``"~ isolation_method"``),
                    cluster (a column of study ids: the multilevel ensemble); when ``mods`` is
                    set the run fits the ensemble with moderators (docs/bias_moderators.md)
``[sensitivity]``   leave_one_out, low_risk_of_bias, nmd_vs_smd, alternative_priors
``[figures]``       formats, width, forest_by, forest_layout, forest_rob, forest_dose
``[dose_response]`` dose, model, scale, knots, share, reported_only_sensitivity: when set, the
                    one-stage dose-response curve (docs/dose_response.md) replaces the
                    meta-regression on log dose in the report
``[validation]``    truth (a JSON file of true parameters, for simulated data)
``[prisma]``        search (exports, one per database), registers, dedupe, screening, extraction (default:
                    analysis.extraction): when set, the report shows the PRISMA 2020 flow diagram
``[certainty]``     important_effect, ois_smd, alpha, power, override: the summary of findings
                    with GRADE certainty and the reviewer's judgements (docs/certainty.md)
``[multiverse]``    choices to cross for ``evmeta multiverse``: quoted spec keys such as
                    ``"comparisons.measure" = ["SMD", "ROM"]``, ``outliers``, ``model`` and
                    ``[multiverse.options]`` (see :class:`MultiverseSection`)

Unknown keys and bad values raise :class:`evmeta.SpecError` naming the key and listing
the valid choices.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from evmeta._paths import read_bytes_capped
from evmeta.analysis.certainty_spec import CertaintySection
from evmeta.analysis.spec_correlation import CombineOutcomesSection, CorrelationSection
from evmeta.errors import PathError, SpecError

#: Most posterior draws per chain, warm-up draws per chain, and draws over all chains.
#: 100,000 x 16 chains of a 30-parameter model is about 0.4 GB of float64; far beyond
#: what convergence needs (a few thousand draws).
MAX_DRAWS = 100_000
MAX_TUNE = 100_000
MAX_TOTAL_DRAWS = 400_000
#: Figure widths accepted, in mm (a journal page is 85-180 mm wide).
MIN_WIDTH_MM, MAX_WIDTH_MM = 20.0, 500.0
#: Most edits (Levenshtein distance; at most one per four characters) by which a
#: ``forest_by`` naming no workbook column is taken for a misspelling of the column
#: (``isolaton_method``) and refused when the spec is read; a name further from every
#: column may be a reviewer's own moderator column (``conditioning`` is three edits from
#: ``preconditioning``), which the run checks against the comparisons table.
FOREST_BY_TYPOS = 2
#: Fewest comparisons for which ``forest_by = "auto"`` groups the forest plot by isolation
#: method: below about ten, most subgroups hold one or two comparisons and their diamonds
#: (k = 2 under Knapp-Hartung: a t quantile on 1 df) say little.
FOREST_GROUP_MIN = 10
#: Largest spec file read, in bytes.
MAX_SPEC_BYTES = 1024 * 1024
#: Columns derived by ``build_comparisons`` that may group a forest plot, besides the
#: extraction's own columns.
DERIVED_COLUMNS = frozenset(
    {
        "measure",
        "domain",
        "unit",
        "label",
        "timepoint_label",
        "data_source",
        "isolation_family",
        "isolation_gmp_scalable",
        "evmetric_like",
        "isct_count",
        "purity_class",
        "quality_score",
        "dose_basis",
        "dose_reliability",
        "direction_flipped",
        "higher_is_better",
        "rob_low_count",
        "rob_low_randomization_blinding",
        "misev_items_reported",
        "first_author",
        "year",
    }
)


def _groupable_columns() -> set[str]:
    from evmeta.schema.columns import SHEETS

    return {c.name for columns in SHEETS.values() for c in columns} | DERIVED_COLUMNS


def known_column(value: str) -> str:
    """``value`` unless it is a near-miss of a workbook or derived column (a ValueError naming
    that column; :data:`FOREST_BY_TYPOS`). A name far from every such column is accepted: it
    may be a reviewer's own moderator column, which only the comparisons table knows, so the
    run checks it against the table."""
    if value in _groupable_columns():
        return value
    from rapidfuzz.distance import Levenshtein

    typos = max(1, min(FOREST_BY_TYPOS, len(value) // 4))
    close = sorted((Levenshtein.distance(value.lower(), name.lower()), name) for name in _groupable_columns())
    if close and close[0][0] <= typos:
        raise ValueError(f"{value!r} is not a column of the comparisons table; did you mean {close[0][1]!r}?")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


#: What the treatment is when the spec does not say: the words of figures and report text.
DEFAULT_INTERVENTION = "MSC-EVs"


class AnalysisSection(_Section):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", max_length=100)
    title: str = ""
    question: str = ""
    extraction: str
    output: str | None = None
    #: What the treated arms were given, as the figures and the report name it ("favours
    #: MSC-EVs", "each arm given rapamycin"): any preclinical intervention.
    intervention: str = Field(DEFAULT_INTERVENTION, min_length=1, max_length=60)
    #: Short form for narrow places (forest column "n EV/ctrl", "several EV arms"); default
    #: "EV" for the default intervention, else "treated".
    intervention_short: str | None = Field(None, min_length=1, max_length=20)

    @field_validator("intervention", "intervention_short")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is None:
            return None
        text = " ".join(value.split())
        if not text:
            raise ValueError("must name the intervention (it is printed in figures and the report)")
        return text

    @property
    def treated(self) -> str:
        """The short form: ``intervention_short``, else "EV" (default intervention) or "treated"."""
        if self.intervention_short:
            return self.intervention_short
        return "EV" if self.intervention == DEFAULT_INTERVENTION else "treated"

    @field_validator("name")
    @classmethod
    def _stays_in_reports(cls, value: str) -> str:
        # The report goes to reports/<name>/: "." and ".." would write elsewhere.
        if set(value) == {"."}:
            raise ValueError("must contain a letter or digit (it names the folder reports/<name>/)")
        return value


class ComparisonsSection(_Section):
    measure: Literal["SMD", "MD", "ROM", "NMD", "OR", "RR", "RD", "NMD_or_SMD"] = "SMD"
    outcomes: list[str] = Field(default_factory=list)
    timepoint: Literal["last", "first", "all"] | float = "last"
    shared_control: Literal["split", "keep"] = "split"
    #: Hedges' g as metafor computes it (exact correction) or as RevMan 5 does.
    smd_variant: Literal["exact", "revman"] = "exact"
    #: Lajeunesse's (2015) bias-corrected ROM (metafor 5's default); False = metafor 3.8/4.
    rom_correct: bool = False
    #: Put binary comparisons (events/totals) on the SMD scale under measure SMD.
    binary_to_smd: Literal["none", "hasselblad_hedges"] = "none"
    combine_outcomes: CombineOutcomesSection | None = None
    correlation: CorrelationSection | None = None


class FiltersSection(_Section):
    species: list[str] = Field(default_factory=list)
    disease_model: list[str] = Field(default_factory=list)
    isolation_family: list[str] = Field(default_factory=list)
    min_quality_score: float = Field(0.0, ge=0, le=1)
    low_risk_of_bias_only: bool = False


#: metafor's names for the spec's values: ``test = "t"`` is Knapp-Hartung in ``rma`` (and the
#: t test of ``rma.mv``), ``method = "FE"`` the equal-effects model.
TEST_SYNONYMS = {"t": "knha", "hksj": "knha"}
METHOD_SYNONYMS = {"FE": "EE"}


def confidence_level(value: Any) -> Any:
    """``95`` (percent, as metafor's ``level = 95``) -> 0.95; a fraction is kept."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if 1 < value < 100:
        return value / 100
    if not 0 < value < 1:
        raise ValueError(f"{value!r} is not a confidence level; give a fraction (0.95) or a percent (95)")
    return value


def random_levels(value: Any) -> Any:
    """metafor's nesting formula ``"~ 1 | study_id/experiment_id"`` -> ``["study_id", "experiment_id"]``
    (a list is kept)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return []
    if text.startswith("~"):
        intercept, bar, nesting = text[1:].partition("|")
        if not bar or intercept.strip() != "1":
            raise ValueError(
                f"{value!r}: only random intercepts nested as '~ 1 | study_id/experiment_id' are read"
            )
        text = nesting
    levels = [part.strip() for part in text.split("/")]
    if not all(levels):
        raise ValueError(f"{value!r}: a level between the '/' is empty")
    return levels


class FrequentistSection(_Section):
    method: Literal["EE", "DL", "REML", "ML", "PM", "HE", "SJ", "EB"] = "REML"
    #: ``knha`` (Knapp-Hartung; ``"t"`` is read as its synonym) or ``z``; applied to every
    #: model it can be (multilevel models: a t test with k - p df, as metafor's test = "t").
    test: Literal["z", "knha"] = "knha"
    #: Confidence level of every interval (0.95; 95 is read as a percent).
    level: float = Field(0.95, gt=0, lt=1)
    subgroups: list[str] = Field(default_factory=lambda: ["isolation_method"])
    meta_regression: str | None = "~ isolation_method + quality_score"
    #: Nesting levels, as a list or as metafor's ``"~ 1 | study_id/experiment_id"``.
    multilevel: list[str] = Field(default_factory=lambda: ["study_id", "experiment_id"])
    robust: bool = True
    #: Location-scale model: moderators of the between-study variance (None: not fitted).
    scale: str | None = None
    #: Effect sizes for "the probability that a new study's true effect exceeds c".
    thresholds: list[float] = Field(default_factory=lambda: [0.0, 0.5], max_length=10)

    @field_validator("test", mode="before")
    @classmethod
    def _test_synonyms(cls, value: Any) -> Any:
        return TEST_SYNONYMS.get(value, value) if isinstance(value, str) else value

    @field_validator("method", mode="before")
    @classmethod
    def _method_synonyms(cls, value: Any) -> Any:
        return METHOD_SYNONYMS.get(value, value) if isinstance(value, str) else value

    @field_validator("level", mode="before")
    @classmethod
    def _percent(cls, value: Any) -> Any:
        return confidence_level(value)

    @field_validator("multilevel", mode="before")
    @classmethod
    def _nesting_formula(cls, value: Any) -> Any:
        return random_levels(value)


class BayesianSection(_Section):
    enabled: bool = True
    mods: str | None = "~ isolation_method + quality_score"
    random: list[str] | None = Field(default_factory=lambda: ["study_id", "experiment_id"])
    method: Literal["auto", "quadrature", "nuts"] = "auto"

    @field_validator("random", mode="before")
    @classmethod
    def _nesting_formula(cls, value: Any) -> Any:
        return random_levels(value)

    likelihood: Literal["normal", "student_t"] = "normal"
    draws: int = Field(1000, ge=100, le=MAX_DRAWS)
    tune: int = Field(1000, ge=0, le=MAX_TUNE)
    chains: int = Field(4, ge=1, le=16)
    seed: int = Field(1, ge=0, le=2**32 - 1)
    #: A table of priors (``[bayesian.priors]``) or a named set: ``"default"``, ``"preclinical"``.
    priors: dict[str, str] | str = Field(default_factory=dict)

    @field_validator("priors", mode="before")
    @classmethod
    def _named_priors(cls, value: Any) -> Any:
        # Checked here so that a bad value gets one sentence, not one per member of the union.
        from evmeta.models.priors import NAMED_PRIORS  # numpy and scipy only when needed

        valid = (
            f'{", ".join(map(repr, NAMED_PRIORS))} or a [bayesian.priors] table (e.g. tau = "halfnormal(1)")'
        )
        if isinstance(value, dict):
            bad = [f"{key} = {prior!r}" for key, prior in value.items() if not isinstance(prior, str)]
            if bad:
                raise ValueError(f'priors are strings such as "normal(0, 1)"; got {", ".join(bad)}')
            _check_priors(value)
            return value
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a prior set; valid choices: {valid}")
        if value.strip().lower() not in NAMED_PRIORS:
            raise ValueError(f"{value!r} is not a named prior set; valid choices: {valid}")
        return value

    @model_validator(mode="after")
    def _total_draws(self) -> BayesianSection:
        if self.draws * self.chains > MAX_TOTAL_DRAWS:
            raise ValueError(
                f"draws x chains = {self.draws} x {self.chains} = {self.draws * self.chains:,} "
                f"posterior draws; the limit is {MAX_TOTAL_DRAWS:,} (lower bayesian.draws or bayesian.chains)"
            )
        return self


def _check_priors(priors: dict[str, Any], where: str = "") -> None:
    """Parse every prior of a table now, so a bad one stops the run at the spec, naming its key
    (a prior the model cannot read used to leave the Bayesian model silently not fitted)."""
    from evmeta.errors import ModelError
    from evmeta.models.priors import check_prior, prior_forms

    for key, value in priors.items():
        try:
            check_prior(key, value)
        except ModelError as exc:
            reason = str(exc).removeprefix(f"{key}: ")
            raise ValueError(f"{where}{key} = {value!r}: {reason}; valid forms: {prior_forms()}") from None


class SensitivitySection(_Section):
    leave_one_out: bool = True
    low_risk_of_bias: bool = True
    nmd_vs_smd: bool = True
    alternative_priors: dict[str, dict[str, str]] = Field(default_factory=dict)

    @field_validator("alternative_priors")
    @classmethod
    def _parsable_priors(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        for name, priors in value.items():
            _check_priors(priors, where=f"{name}: ")
        return value


FigureFormat = Literal["pdf", "svg", "png"]
FIGURE_FORMATS: tuple[FigureFormat, ...] = ("pdf", "svg", "png")


class FiguresSection(_Section):
    formats: list[FigureFormat] = Field(default_factory=lambda: list(FIGURE_FORMATS))
    width: Literal["double", "single"] | float = "double"
    #: Column that groups the forest plot; ``"auto"``: isolation method when at least
    #: :data:`FOREST_GROUP_MIN` comparisons, else none; ``"none"``, ``""`` or ``false``: no grouping.
    forest_by: str | None = "auto"
    #: Look of the forest plot: ``"evmeta"`` (default), ``"revman"`` (RevMan 5) or ``"jama"``
    #: (see :mod:`evmeta.plots.forest.journal`).
    forest_layout: Literal["evmeta", "revman", "jama"] = "evmeta"
    #: Journal layouts: SYRCLE risk-of-bias dots per comparison (a note when none are entered).
    forest_rob: bool = False
    #: Journal layouts: a column of the harmonized per-kg dose.
    forest_dose: bool = False

    @field_validator("forest_rob", "forest_dose")
    @classmethod
    def _journal_only(cls, value: bool, info: Any) -> bool:
        if value and info.data.get("forest_layout", "evmeta") == "evmeta":
            raise ValueError(
                'needs forest_layout = "revman" or "jama" (the default layout has its dose column '
                "already and draws no risk-of-bias dots)"
            )
        return value

    @field_validator("width")
    @classmethod
    def _width_mm(cls, value: str | float) -> str | float:
        if isinstance(value, str):
            return value
        if not MIN_WIDTH_MM <= value <= MAX_WIDTH_MM:
            raise ValueError(
                f"a width in mm must be between {MIN_WIDTH_MM:g} and {MAX_WIDTH_MM:g} "
                '(or "double" = 180 mm, "single" = 85 mm)'
            )
        return value

    @field_validator("forest_by", mode="before")
    @classmethod
    def _no_grouping(cls, value: Any) -> Any:
        if value is False or (isinstance(value, str) and value.strip().lower() in {"", "none", "false"}):
            return None
        return value

    @field_validator("forest_by")
    @classmethod
    def _known_column(cls, value: str | None) -> str | None:
        """A misspelt workbook column is refused here, before the workbook is read; any other
        name may be a reviewer's own moderator column (import-wide ``[moderators]``), which
        only the comparisons table knows: the run checks it there (``check_forest_by``)."""
        if value is None or value == "auto":
            return value
        return known_column(value)

    @field_validator("formats")
    @classmethod
    def _svg_needed(cls, value: list[str]) -> list[str]:
        # The HTML report embeds the SVG versions.
        return value if "svg" in value else [*value, "svg"]


class DoseResponseSection(_Section):
    dose: str = "dose_ug_protein_per_kg"
    model: Literal["linear", "spline", "emax"] = "spline"
    scale: Literal["log10", "dose"] = "log10"
    knots: list[float] = Field(default_factory=lambda: [0.1, 0.5, 0.9], min_length=3)
    share: float = Field(0.5, gt=0, lt=1)
    reported_only_sensitivity: bool = True

    @field_validator("dose")
    @classmethod
    def _known_basis(cls, value: str) -> str:
        from evmeta.models.dose_response.selection import DOSE_BASES

        if value.removeprefix("dose_") not in DOSE_BASES:
            raise ValueError(
                f"unknown dose {value!r}; valid doses: {', '.join('dose_' + b for b in DOSE_BASES)}"
            )
        return value


class BiasSection(_Section):
    """``[bias]``: moderators inside the bias-averaged ensemble (docs/bias_moderators.md).

    ``mods`` is a sum of column names (``"~ isolation_method + quality_score"``; at most one
    categorical column, which the ensemble's selection models integrate level by level);
    ``cluster`` a column of study ids, which gives the models a random effect of study and
    leaves the step-selection models out. Not set: the ensemble is fitted without moderators
    only (the bias section's 16 models).
    """

    mods: str | None = None
    cluster: str | None = None

    @field_validator("mods", "cluster", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("mods")
    @classmethod
    def _sum_of_columns(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from evmeta.models.base.simple_formula import simple_terms

        text = value.strip()
        names = simple_terms(text if text.startswith("~") else "~ " + text)
        if names is None:
            raise ValueError(
                f"{value!r}: the bias ensemble takes a sum of distinct column names such as "
                "'~ isolation_method + quality_score' (no interactions, transforms or repeats)"
            )
        for name in names:
            known_column(name)
        return "~ " + " + ".join(names)

    @field_validator("cluster")
    @classmethod
    def _cluster_column(cls, value: str | None) -> str | None:
        return None if value is None else known_column(value.strip())

    @model_validator(mode="after")
    def _cluster_needs_mods(self) -> BiasSection:
        if self.cluster is not None and self.mods is None:
            raise ValueError(
                "cluster is set without mods: the multilevel ensemble is fitted with moderators "
                '(set mods, e.g. "~ isolation_method", or remove cluster)'
            )
        return self


class ValidationSection(_Section):
    truth: str | None = None


class PrismaSection(_Section):
    """Files the PRISMA 2020 flow diagram is counted from (paths relative to the spec)."""

    search: list[str] = Field(default_factory=list)
    registers: list[str] = Field(default_factory=list)
    dedupe: str | None = None
    screening: str | None = None
    extraction: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.search or self.dedupe or self.screening)


#: Spec keys a multiverse may cross: they change the data or the fitted model of the
#: pooled effect. (Other keys exist but do not change a multiverse specification.)
MULTIVERSE_KEYS = (
    "comparisons.measure",
    "comparisons.outcomes",
    "comparisons.timepoint",
    "comparisons.shared_control",
    "comparisons.smd_variant",
    "comparisons.rom_correct",
    "comparisons.binary_to_smd",
    "filters.species",
    "filters.disease_model",
    "filters.isolation_family",
    "filters.min_quality_score",
    "filters.low_risk_of_bias_only",
    "frequentist.method",
    "frequentist.test",
    "frequentist.multilevel",
)
MULTIVERSE_MODELS = ("random_effects", "three_level", "bayes_quadrature")
_OUTLIER_RULE = r"^(none|studentized_residual_gt_\d+(\.\d+)?)$"


class MultiverseOptions(_Section):
    """``[multiverse.options]``: how the multiverse is run and summarized."""

    min_k: int = Field(3, ge=2)
    null_resamples: int = Field(0, ge=0, le=100_000)
    seed: int = 1
    batch_size: int | None = Field(None, ge=1)


MultiverseModel = Literal["random_effects", "three_level", "bayes_quadrature"]
_DEFAULT_MULTIVERSE_MODELS: tuple[MultiverseModel, ...] = ("random_effects",)


class MultiverseSection(_Section):
    """``[multiverse]``: the choices to cross, each a list of values.

    Quoted dotted keys (``"comparisons.measure"``) name a key of this spec
    (:data:`MULTIVERSE_KEYS`); each value must be valid for that key. ``outliers`` takes
    ``"none"`` or ``"studentized_residual_gt_<c>"`` (drop comparisons whose studentized deleted
    residual exceeds c in absolute value); ``model`` takes ``random_effects``, ``three_level``
    and ``bayes_quadrature``.
    """

    choices: dict[str, list[Any]] = Field(default_factory=dict)
    outliers: list[str] = Field(default_factory=lambda: ["none"], min_length=1)
    model: list[MultiverseModel] = Field(
        default_factory=lambda: list(_DEFAULT_MULTIVERSE_MODELS), min_length=1
    )
    options: MultiverseOptions = Field(default_factory=MultiverseOptions)

    @model_validator(mode="before")
    @classmethod
    def _collect_choices(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        fixed = {"choices", "outliers", "model", "options"}
        out = {k: v for k, v in data.items() if k in fixed}
        dotted = {k: v for k, v in data.items() if k not in fixed}
        out["choices"] = {**data.get("choices", {}), **dotted}
        return out

    @field_validator("outliers")
    @classmethod
    def _outlier_rules(cls, value: list[str]) -> list[str]:
        import re

        for rule in value:
            if not re.match(_OUTLIER_RULE, str(rule)):
                raise ValueError(
                    f"outlier rule {rule!r} is not allowed; valid: 'none', 'studentized_residual_gt_<number>'"
                )
        return _unique(value, "outliers")

    @field_validator("model")
    @classmethod
    def _unique_models(cls, value: list[str]) -> list[str]:
        return _unique(value, "model")

    @field_validator("choices")
    @classmethod
    def _check_choices(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        return {key: _check_choice(key, values) for key, values in value.items()}


def _unique(values: list[Any], key: str) -> list[Any]:
    seen = [repr(v) for v in values]
    if len(set(seen)) != len(seen):
        raise ValueError(f"{key}: values repeat in {values!r}")
    return values


def _check_choice(key: str, values: Any) -> list[Any]:
    """Validate each value of a multiverse choice with the spec's own section model."""
    section, _, name = key.partition(".")
    sections: dict[str, type[BaseModel]] = {
        "comparisons": ComparisonsSection,
        "filters": FiltersSection,
        "frequentist": FrequentistSection,
    }
    model = sections.get(section)
    if key not in MULTIVERSE_KEYS or model is None or name not in model.model_fields:
        raise ValueError(
            f"{key!r} is not a spec key the multiverse can cross; valid keys: {', '.join(MULTIVERSE_KEYS)}, "
            "outliers, model, options"
        )
    if not isinstance(values, list) or not values:
        raise ValueError(f"{key!r} needs a non-empty list of values, got {values!r}")
    checked = []
    for value in values:
        try:
            parsed = model.model_validate({name: value})
        except ValidationError as exc:
            detail = "; ".join(_message(e) for e in exc.errors())
            raise ValueError(f"{key!r}: value {value!r} is not valid ({detail})") from None
        checked.append(getattr(parsed, name))
    return _unique(checked, key)


class AnalysisSpec(_Section):
    """A parsed, validated analysis spec (paths resolved relative to the spec file)."""

    analysis: AnalysisSection
    comparisons: ComparisonsSection = Field(default_factory=ComparisonsSection)
    filters: FiltersSection = Field(default_factory=FiltersSection)
    moderators: dict[str, str] = Field(default_factory=dict)
    frequentist: FrequentistSection = Field(default_factory=FrequentistSection)
    bayesian: BayesianSection = Field(default_factory=BayesianSection)
    bias: BiasSection = Field(default_factory=BiasSection)
    sensitivity: SensitivitySection = Field(default_factory=SensitivitySection)
    figures: FiguresSection = Field(default_factory=FiguresSection)
    validation: ValidationSection = Field(default_factory=ValidationSection)
    prisma: PrismaSection = Field(default_factory=PrismaSection)
    dose_response: DoseResponseSection | None = None
    certainty: CertaintySection = Field(default_factory=CertaintySection)
    multiverse: MultiverseSection | None = None
    source: Path | None = None

    def resolve(self, relative: str) -> Path:
        """A path from the spec, relative to the spec file's folder."""
        path = Path(relative)
        return path if path.is_absolute() or self.source is None else (self.source.parent / path).resolve()

    @property
    def extraction_path(self) -> Path:
        return self.resolve(self.analysis.extraction)

    @property
    def output_path(self) -> Path:
        if self.analysis.output:
            return self.resolve(self.analysis.output)
        base = self.source.parent.parent if self.source is not None else Path.cwd()
        return (base / "reports" / self.analysis.name).resolve()


def _valid_keys(location: tuple[str, ...]) -> list[str]:
    """The keys of the table at ``location[:-1]``, through nested tables and arrays of tables."""
    model: Any = AnalysisSpec
    for part in location[:-1]:
        if part.isdigit():  # an element of an array of tables ([[certainty.override]])
            continue
        field = (
            model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        )
        args = getattr(field.annotation, "__args__", ()) if field is not None else ()
        model = next(
            (a for a in args if isinstance(a, type) and issubclass(a, BaseModel)), field and field.annotation
        )
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [k for k in model.model_fields if k != "source"]
    return []


def _message(error: Mapping[str, Any]) -> str:
    location = tuple(str(p) for p in error["loc"])
    where = ".".join(location)
    if error["type"] == "extra_forbidden":
        valid = _valid_keys(location)
        table = ".".join(p for p in location[:-1] if not p.isdigit())
        return (
            f"unknown key {where!r}; valid keys{' in [' + table + ']' if table else ''}: {', '.join(valid)}"
        )
    if error["type"] == "missing":
        return f"missing required key {where!r}"
    if error["type"] == "value_error":
        return f"{where.removesuffix('.choices')}: {error['msg'].removeprefix('Value error, ')}"
    if error["type"] in {"literal_error", "enum"}:
        return f"{where}: {error['input']!r} is not allowed; valid choices: {error['ctx']['expected']}"
    return f"{where}: {error['msg']} (got {error.get('input')!r})"


def parse_spec(data: dict[str, Any], source: Path | None = None) -> AnalysisSpec:
    """Validate a spec given as a dict (as read from TOML)."""
    try:
        spec = AnalysisSpec.model_validate(data)
    except ValidationError as exc:
        where = f"{source}: " if source else ""
        raise SpecError(where + "; ".join(_message(e) for e in exc.errors())) from None
    spec.source = source
    return spec


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = read_bytes_capped(path, what="analysis spec", max_bytes=MAX_SPEC_BYTES)
    except PathError as exc:
        raise SpecError(str(exc)) from None
    try:
        # A byte-order mark (Notepad's "UTF-8 with BOM") is no part of the TOML.
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(
            f"{path}: line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8; save the spec as UTF-8"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{path}: not valid TOML: nested too deeply") from None


def _check_output(spec: AnalysisSpec, path: Path) -> None:
    """The report folder must be a folder that holds neither the spec nor the extraction."""
    out = spec.output_path
    key = "analysis.output" if spec.analysis.output else "analysis.name"
    if out.exists() and not out.is_dir():
        raise SpecError(f"{path}: {key}: {out} is an existing file; the report needs a folder")
    for what, inside in [("spec", path), ("extraction", spec.extraction_path)]:
        if out == inside or out in inside.parents:
            raise SpecError(
                f"{path}: {key}: the report folder {out} holds the {what} {inside.name}; "
                "choose a folder of its own (default: reports/<name>)"
            )


def load_spec(path: str | Path) -> AnalysisSpec:
    """Read and validate ``analyses/<name>.toml``."""
    path = Path(path).resolve()
    spec = parse_spec(_read_toml(path), path)
    if not spec.extraction_path.exists():
        raise SpecError(f"{path}: analysis.extraction: {spec.extraction_path} does not exist")
    _check_output(spec, path)
    return spec
