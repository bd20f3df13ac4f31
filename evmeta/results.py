"""The fitted models of an analysis run: one frozen, typed object, the contract between the
stages that fit the models and the report, figures and exports that read them.

Every model family has its own field (``models.random_effects``, ``models.egger["sei"]``,
``models.bias_averaging["preclinical"]``), so a consumer reads a typed attribute and a type
checker sees a misspelt one; nothing is looked up by a string the stages and the report
must agree on. Families fitted once per value of something the spec names (subgroups per
column, Egger's test per predictor, bias model averaging per prior set) are read-only
mappings keyed by that value. The stages never mutate the object: each records what it
fitted with :meth:`AnalysisModels.with_` (a new object), see :mod:`evmeta.analysis.stages`.

The names in :meth:`AnalysisModels.labelled` are the ``model`` column of ``results.csv``
and ``heterogeneity.csv`` (a file format, kept stable), not a way to reach a model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the result types live in the models layer; imported for the annotations only
    from evmeta.models.bayes.result import BayesResult
    from evmeta.models.bias.averaging import BiasAveragingResult
    from evmeta.models.bias.multilevel_small_study import MultilevelSmallStudyResult
    from evmeta.models.bias.selection import SelectionResult
    from evmeta.models.bias.small_study import EggerResult, PetPeeseResult, TrimFillResult
    from evmeta.models.dose_response.result import DoseResponseResult
    from evmeta.models.frequentist.location_scale import LocationScaleResult
    from evmeta.models.frequentist.meta import MetaResult
    from evmeta.models.frequentist.multilevel import MultilevelResult
    from evmeta.models.frequentist.subgroup import SubgroupResult

    #: A frequentist model with coefficients and variance components (rows of results.csv).
    CoefficientModel = (
        MetaResult | MultilevelResult | LocationScaleResult | DoseResponseResult | SelectionResult
    )

#: The mapping-valued families (read-only after :meth:`AnalysisModels.with_`).
_KEYED = ("subgroups", "egger", "multilevel_egger", "bias_averaging")


@dataclass(frozen=True, slots=True)
class AnalysisModels:
    """Every model an analysis run fitted; a family that was not fitted is ``None`` (or an
    empty mapping) and the run's notes say why.

    Attributes
    ----------
    random_effects : MetaResult or None
        The main random-effects model (the spec's estimator, test and level).
    subgroups : Mapping[str, SubgroupResult]
        One subgroup analysis per column of ``[frequentist] subgroups`` that could be fitted.
    meta_regression : MetaResult or None
        The meta-regression on ``[frequentist] meta_regression``.
    multilevel, multilevel_regression : MultilevelResult or None
        The multilevel model (``[frequentist] multilevel``) without and with the moderators.
    location_scale : LocationScaleResult or None
        The location-scale model of ``[frequentist] scale``.
    dose_response : MetaResult or DoseResponseResult or None
        The dose meta-regression (log10 µg protein per kg) or the curve of ``[dose_response]``.
    egger : Mapping[str, EggerResult]
        Egger's regression per predictor (``"sei"``, ``"sqrt_inv_n"``).
    multilevel_egger : Mapping[str, MultilevelSmallStudyResult]
        Egger / PET-PEESE as a moderator of the multilevel model, per predictor.
    trim_and_fill : TrimFillResult or None
    pet_peese : PetPeeseResult or None
    selection_model : SelectionResult or None
        The step-function selection model of the main model.
    bias_averaging : Mapping[str, BiasAveragingResult]
        Bias model averaging per prior set (``"default"``, ``"preclinical"``).
    bias_moderators : BiasAveragingResult or None
        The bias-averaged ensemble with the moderators of ``[bias] mods`` (and the random
        effect of ``[bias] cluster``), default priors: inclusion Bayes factors per term and
        bias-adjusted marginal means per level (:mod:`evmeta.analysis.bias_moderators_stage`).
    bayesian : BayesResult or None
        The Bayesian hierarchical model of ``[bayesian]``.
    """

    random_effects: MetaResult | None = None
    subgroups: Mapping[str, SubgroupResult] = field(default_factory=dict)
    meta_regression: MetaResult | None = None
    multilevel: MultilevelResult | None = None
    multilevel_regression: MultilevelResult | None = None
    location_scale: LocationScaleResult | None = None
    dose_response: MetaResult | DoseResponseResult | None = None
    egger: Mapping[str, EggerResult] = field(default_factory=dict)
    multilevel_egger: Mapping[str, MultilevelSmallStudyResult] = field(default_factory=dict)
    trim_and_fill: TrimFillResult | None = None
    pet_peese: PetPeeseResult | None = None
    selection_model: SelectionResult | None = None
    bias_averaging: Mapping[str, BiasAveragingResult] = field(default_factory=dict)
    bias_moderators: BiasAveragingResult | None = None
    bayesian: BayesResult | None = None

    def __post_init__(self) -> None:
        for name in _KEYED:  # a caller's dict is copied and made read-only
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def with_(self, **changes: Any) -> AnalysisModels:
        """A copy with ``changes`` (field name -> value); an unknown name is a TypeError."""
        return dataclasses.replace(self, **changes)

    def adding(self, family: str, key: str, result: Any) -> AnalysisModels:
        """A copy with ``result`` added under ``key`` to the mapping-valued ``family``."""
        if family not in _KEYED:
            raise TypeError(f"{family!r} is not one of the keyed families {_KEYED}")
        changes: dict[str, Any] = {family: {**getattr(self, family), key: result}}
        return dataclasses.replace(self, **changes)

    def only(self, *families: str) -> AnalysisModels:
        """A copy holding only ``families`` (field names); the others are left unfitted."""
        unknown = set(families) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"no model families {sorted(unknown)}")
        return AnalysisModels(**{name: getattr(self, name) for name in families})

    @property
    def main(self) -> MetaResult:
        """The random-effects model (every run fits it first; refusing it stops the run)."""
        if self.random_effects is None:
            raise LookupError("the run has no random-effects model")
        return self.random_effects

    def coefficient_models(self) -> Iterator[tuple[str, CoefficientModel]]:
        """The frequentist models with coefficients and variance components (the selection
        model among them), with the name
        ``results.csv`` gives each (subgroups and the Bayesian model have their own rows)."""
        for name in _COEFFICIENT_FAMILIES:
            fit = getattr(self, name)
            if fit is not None:
                yield name, fit

    def labelled(self) -> Iterator[tuple[str, Any]]:
        """Every fitted model with its label in the output files, in the order the stages
        fit them (the main model, its subgroups, the regressions, bias, Bayesian)."""
        fits = dict(self.coefficient_models())
        if "random_effects" in fits:
            yield "random_effects", fits.pop("random_effects")
        for by, result in self.subgroups.items():
            yield f"subgroup:{by}", result
        yield from fits.items()
        for predictor, egger in self.egger.items():
            yield f"egger:{predictor}", egger
        for predictor, ml_egger in self.multilevel_egger.items():
            yield f"multilevel_egger:{predictor}", ml_egger
        for name in ("trim_and_fill", "pet_peese"):
            fit = getattr(self, name)
            if fit is not None:
                yield name, fit
        for priors, bma in self.bias_averaging.items():
            yield ("bias_averaging" if priors == "default" else f"bias_averaging:{priors}"), bma
        if self.bias_moderators is not None:
            yield "bias_moderators", self.bias_moderators
        if self.bayesian is not None:
            yield "bayesian", self.bayesian


#: Families whose results have coefficients and variance components, in fitting order.
_COEFFICIENT_FAMILIES = (
    "random_effects",
    "meta_regression",
    "multilevel",
    "multilevel_regression",
    "dose_response",
    "location_scale",
    "selection_model",
)


__all__ = ["AnalysisModels"]
