"""The specifications of a multiverse: the cross product of the ``[multiverse]`` choices.

Every specification is the analysis spec with some keys replaced. It carries all its
settings (crossed or not), a hash of them (which seeds its random numbers, so results do
not depend on how the work is split), and the keys that group specifications sharing one
comparisons table (``build_key``) and one filtered analysis table (``table_key``).
Combinations that make no sense are kept in the plan with ``status="skipped"`` and the
reason, so that every cell of the cross product is accounted for.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from evmeta.analysis.spec import MULTIVERSE_KEYS, AnalysisSpec
from evmeta.errors import SpecError

#: Settings that only change how a model is fitted, by the models they apply to.
MODEL_KEYS = ("frequentist.method", "frequentist.test", "frequentist.multilevel")
APPLIES = {
    "random_effects": {"frequentist.method", "frequentist.test"},
    "three_level": {"frequentist.method", "frequentist.test", "frequentist.multilevel"},
    "bayes_quadrature": set(),
}
BUILD_KEYS = (
    "comparisons.measure",
    "comparisons.outcomes",
    "comparisons.timepoint",
    "comparisons.shared_control",
    "comparisons.smd_variant",
    "comparisons.rom_correct",
    "comparisons.binary_to_smd",
)
FILTER_KEYS = tuple(k for k in MULTIVERSE_KEYS if k.startswith("filters."))
MULTILEVEL_METHODS = ("REML", "ML")
#: Most specifications a multiverse may cross (checked before any is built: 10^7 would
#: exhaust memory while planning). The example's multiverse has 648.
MAX_SPECIFICATIONS = 100_000
#: Most resamples of the specification-curve test, on the command line as in the spec.
MAX_NULL_RESAMPLES = 100_000
#: Most model fits of one run: specifications x (1 + resamples).
MAX_FITS = 20_000_000


def count_specifications(spec: AnalysisSpec) -> int:
    """How many specifications the spec's multiverse crosses (without building them)."""
    count = 1
    for values in choice_lists(spec).values():
        count *= max(len(values), 1)
    return count


def check_size(spec: AnalysisSpec, null_resamples: int) -> int:
    """Refuse (SpecError, with the numbers) a multiverse or a test too large to run."""
    count = count_specifications(spec)
    if count > MAX_SPECIFICATIONS:
        raise SpecError(
            f"{spec.source}: [multiverse] crosses {count:,} specifications; the limit is "
            f"{MAX_SPECIFICATIONS:,}: cross fewer choices or fewer values per choice"
        )
    if not 0 <= null_resamples <= MAX_NULL_RESAMPLES:
        raise SpecError(f"null_resamples must be 0 to {MAX_NULL_RESAMPLES:,}, got {null_resamples:,}")
    fits = count * (1 + null_resamples)
    if fits > MAX_FITS:
        raise SpecError(
            f"{spec.source}: {count:,} specifications x (1 + {null_resamples:,} resamples) = {fits:,} "
            f"model fits; the limit is {MAX_FITS:,}: use fewer resamples or fewer specifications"
        )
    return count


@dataclass
class Specification:
    """One analysis of the multiverse.

    Attributes
    ----------
    spec_id : int
        1-based position in the cross product (order of the ``[multiverse]`` keys).
    choices : dict
        The crossed keys and their values in this specification (``outliers`` and ``model``
        included), in the order of the section.
    settings : dict
        Every setting the fit uses (crossed or taken from the spec).
    spec_hash : str
        SHA-256 of ``settings`` (canonical JSON): the specification's identity and seed source.
    status, reason : str
        ``planned`` or ``skipped`` (with the reason) before fitting.
    """

    spec_id: int
    choices: dict[str, Any]
    settings: dict[str, Any]
    spec_hash: str
    status: str = "planned"
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def build_key(self) -> str:
        """Identity of the comparisons table (one build per distinct value)."""
        return _canonical({k: self.settings[k] for k in BUILD_KEYS})

    @property
    def table_key(self) -> str:
        """Identity of the filtered analysis table (comparisons choice and filters)."""
        return _canonical({k: self.settings[k] for k in (*BUILD_KEYS, *FILTER_KEYS)})

    @property
    def model(self) -> str:
        return str(self.settings["model"])


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))


def spec_hash(settings: dict[str, Any]) -> str:
    """SHA-256 of the settings of a specification (independent of key order)."""
    return hashlib.sha256(_canonical(settings).encode()).hexdigest()


def base_settings(spec: AnalysisSpec) -> dict[str, Any]:
    """The spec's own value of every key a multiverse can cross, plus the fixed choices."""
    out = {}
    for key in MULTIVERSE_KEYS:
        section, name = key.split(".")
        out[key] = getattr(getattr(spec, section), name)
    out["outliers"] = "none"
    out["model"] = "random_effects"
    return out


def choice_lists(spec: AnalysisSpec) -> dict[str, list[Any]]:
    """The crossed keys with their values, in the order of the section (outliers, model last)."""
    if spec.multiverse is None:
        raise SpecError(f"{spec.source}: no [multiverse] section; it lists the choices to cross")
    section = spec.multiverse
    lists = dict(section.choices)
    lists["outliers"] = list(section.outliers)
    lists["model"] = list(section.model)
    return lists


def plan(spec: AnalysisSpec) -> list[Specification]:
    """Every specification of the multiverse, with the combinations that make no sense skipped.

    Rules (checked before any data is read):

    * ``comparisons.shared_control = "keep"`` is decided per table when it is fitted
      (:mod:`evmeta.analysis.multiverse.fit`): where comparisons share a control,
      ``three_level`` takes their sampling covariance and the univariate models and the
      outlier rule are skipped with that reason.
    * ``three_level`` fits REML or ML only: other tau^2 estimators are skipped.
    * A setting that does not apply to the model (the tau^2 estimator or the test for
      ``bayes_quadrature``, the multilevel levels outside ``three_level``) would repeat
      another specification: only its first listed value is fitted, the others are skipped
      as duplicates naming the specification they repeat.
    """
    check_size(spec, 0)
    lists = choice_lists(spec)
    base = base_settings(spec)
    keys = list(lists)
    specs: list[Specification] = []
    by_hash: dict[str, int] = {}
    for number, values in enumerate(itertools.product(*(lists[k] for k in keys)), start=1):
        choices = dict(zip(keys, values, strict=True))
        settings = {**base, **choices}
        item = Specification(number, choices, settings, spec_hash(settings))
        by_hash[item.spec_hash] = number
        specs.append(item)
    for item in specs:
        item.reason = _skip_reason(item, lists, by_hash)
        if item.reason:
            item.status = "skipped"
    return specs


def _skip_reason(item: Specification, lists: dict[str, list[Any]], by_hash: dict[str, int]) -> str:
    s, model = item.settings, item.model
    if model == "three_level" and str(s["frequentist.method"]).upper() not in MULTILEVEL_METHODS:
        return f"three_level fits REML or ML only; frequentist.method = {s['frequentist.method']!r} does not apply"
    if model == "three_level" and not s["frequentist.multilevel"]:
        return "three_level needs frequentist.multilevel levels (e.g. ['study_id', 'experiment_id'])"
    unused = [k for k in MODEL_KEYS if k in lists and k not in APPLIES[model] and s[k] != lists[k][0]]
    if unused:
        canonical = {**s, **{k: lists[k][0] for k in unused}}
        twin = by_hash.get(spec_hash(canonical))
        names = ", ".join(unused)
        return f"duplicate of specification {twin}: {names} does not apply to {model}"
    return ""


__all__ = [
    "MAX_SPECIFICATIONS",
    "Specification",
    "base_settings",
    "check_size",
    "choice_lists",
    "count_specifications",
    "plan",
    "spec_hash",
]
