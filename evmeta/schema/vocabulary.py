"""Controlled vocabularies and their normalization with rapidfuzz.

A value a reviewer typed is matched, in order, against the canonical values and their
synonyms:

1. exactly (after trimming outer white space): accepted silently;
2. by fuzzy similarity (case, spacing, punctuation, small typos) with a score at or above
   the vocabulary's threshold: accepted, with a note naming what was read and the score;
3. otherwise: rejected, listing the three closest allowed values.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache

from rapidfuzz import fuzz, process

from evmeta.data import load_csv, load_toml
from evmeta.errors import UnknownNameError

#: Minimum similarity (0-100) for a fuzzy match to be accepted.
DEFAULT_THRESHOLD = 86.0


def _fold(text: str) -> str:
    """Case, accents, Greek mu and punctuation folded away; spaces collapsed."""
    text = unicodedata.normalize("NFKC", text).replace("μ", "u").replace("µ", "u")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = re.sub(r"[^0-9a-z]+", " ", text.casefold())
    return text.strip()


def _similarity(a: str, b: str, **_: object) -> float:
    """Similarity of two folded strings, also comparing them with spaces removed.

    ``"ultra centrifugation"`` and ``"ultracentrifugation"`` differ only by a space, which
    a plain Levenshtein ratio would penalize.
    """
    return max(fuzz.ratio(a, b), fuzz.ratio(a.replace(" ", ""), b.replace(" ", "")))


@dataclass(frozen=True)
class Match:
    """Outcome of normalizing one value.

    ``canonical`` is None when nothing matched; ``kind`` is ``exact``, ``fuzzy`` or
    ``none``; ``suggestions`` lists the closest canonical values when nothing matched.
    """

    value: str
    canonical: str | None
    kind: str
    score: float
    matched: str | None = None
    suggestions: tuple[str, ...] = ()


@dataclass
class Vocabulary:
    """A named set of canonical values, each with synonyms.

    Parameters
    ----------
    name : str
        Vocabulary name (``route``, ``isolation_step``, ...).
    terms : dict
        Canonical value -> list of synonyms.
    threshold : float
        Minimum rapidfuzz score (0-100) to accept a fuzzy match.
    """

    name: str
    terms: dict[str, list[str]]
    threshold: float = DEFAULT_THRESHOLD
    _exact: dict[str, str] = field(init=False, repr=False)
    _folded: dict[str, str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._exact = {}
        self._folded = {}
        for canonical, synonyms in self.terms.items():
            for spelling in (canonical, *synonyms):
                self._exact.setdefault(spelling.strip(), canonical)
                self._folded.setdefault(_fold(spelling), canonical)
        self._folded.pop("", None)

    @property
    def values(self) -> list[str]:
        """The canonical values, in data-file order."""
        return list(self.terms)

    def normalize(self, value: str) -> Match:
        """Match ``value`` to a canonical value (see the module docstring)."""
        text = str(value).strip()
        if text in self._exact:
            return Match(text, self._exact[text], "exact", 100.0, text)
        folded = _fold(text)
        if not folded:
            return Match(text, None, "none", 0.0, suggestions=tuple(self.values[:3]))
        if folded in self._folded:
            return Match(text, self._folded[folded], "fuzzy", 100.0, folded)
        # Short codes ("UC", "IP") are too easily confused to match fuzzily.
        if len(folded.replace(" ", "")) > 3:
            best = process.extractOne(
                folded, list(self._folded), scorer=_similarity, score_cutoff=self.threshold
            )
            if best is not None:
                spelling, score, _ = best
                return Match(text, self._folded[spelling], "fuzzy", float(score), spelling)
        return Match(text, None, "none", 0.0, suggestions=self.closest(text))

    def closest(self, value: str, limit: int = 3) -> tuple[str, ...]:
        """The ``limit`` canonical values closest to ``value``."""
        folded = _fold(str(value))
        ranked = process.extract(folded, list(self._folded), scorer=_similarity, limit=None)
        out: list[str] = []
        for spelling, _, _ in ranked:
            canonical = self._folded[spelling]
            if canonical not in out:
                out.append(canonical)
            if len(out) == limit:
                break
        return tuple(out)


@cache
def vocabularies() -> dict[str, Vocabulary]:
    """Every vocabulary evmeta knows, by name (loaded once from ``evmeta/data``)."""
    out = {name: Vocabulary(name, dict(terms)) for name, terms in load_toml("vocabularies.toml").items()}
    steps = load_toml("isolation_methods.toml")
    out["isolation_step"] = Vocabulary(
        "isolation_step", {code: [info["label"], *info["synonyms"]] for code, info in steps.items()}
    )
    out["species"] = Vocabulary(
        "species",
        {
            row["species"]: [row["label"], *filter(None, row["synonyms"].split("|"))]
            for row in species_table()
        },
    )
    return out


#: Columns of the analysis tables whose values come from a vocabulary of another name.
COLUMN_VOCABULARIES = {"isolation_method": "isolation_step", "role": "arm_role"}
#: Vocabularies whose codes are the field's own abbreviations, shown as they are (UC, TFF+SEC).
VERBATIM_VOCABULARIES = frozenset({"isolation_step"})


@cache
def _labels() -> dict[str, dict[str, str]]:
    return {name: dict(table) for name, table in load_toml("vocabulary_labels.toml").items()}


def vocabulary_of(column: str) -> str | None:
    """The vocabulary a column's values come from (``isolation_method`` -> ``isolation_step``,
    ``rob_*`` -> ``syrcle_judgement``), or None for a column without one."""
    if not isinstance(column, str):
        return None
    name = COLUMN_VOCABULARIES.get(column, column).replace(" ", "_")
    if name.startswith("rob_"):
        return "syrcle_judgement"
    return name if name in vocabularies() else None


def display_label(value: object, vocabulary: str | None = None) -> str:
    """A vocabulary code as figures and report tables write it: words a reader can quote.

    Parameters
    ----------
    value : object
        A code (``focal_cerebral_ischemia``); anything else (a number, a free-text value)
        is shown as ``str(value)``, a missing value as ``""``.
    vocabulary : str, optional
        The vocabulary or the table column the code comes from (``disease_model``,
        ``isolation_method``, ...). Without it, a code listed with one label in
        ``evmeta/data/vocabulary_labels.toml`` takes that label.

    Returns
    -------
    str
        The label of ``vocabulary_labels.toml`` where it has one
        (``focal_cerebral_ischemia`` -> "focal cerebral ischaemia"); isolation-method codes
        as they are (``UC``, ``TFF+SEC``: the field's abbreviations); otherwise the code with
        its underscores as spaces (``myocardial_infarction`` -> "myocardial infarction").

    Examples
    --------
    >>> display_label("focal_cerebral_ischemia", "disease_model")
    'focal cerebral ischaemia'
    >>> display_label("UC", "isolation_method"), display_label("vehicle_control")
    ('UC', 'vehicle control')
    """
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if not isinstance(value, str):
        return str(value)
    name = vocabulary_of(vocabulary) if vocabulary else None
    if name in VERBATIM_VOCABULARIES:
        return value
    labels = _labels()
    if name is not None and value in labels.get(name, {}):
        return labels[name][value]
    if vocabulary is None:
        found = {table[value] for table in labels.values() if value in table}
        if len(found) == 1:
            return found.pop()
    return value.replace("_", " ")


def vocabulary(name: str) -> Vocabulary:
    """One vocabulary by name; raises KeyError listing the valid names."""
    vocabs = vocabularies()
    if name not in vocabs:
        raise UnknownNameError(f"unknown vocabulary {name!r}; valid names: {', '.join(sorted(vocabs))}")
    return vocabs[name]


@cache
def isolation_steps() -> dict[str, dict]:
    """Isolation step code -> {label, family, gmp_scalable, synonyms}."""
    return load_toml("isolation_methods.toml")


def species_table() -> tuple[dict[str, str], ...]:
    """Species rows: species, label, reference_body_weight_kg, km, synonyms."""
    return load_csv("species.csv")


_STEP_SPLIT = re.compile(r"\s*(?:\+|->|→|>|,|;|\bthen\b|\bfollowed by\b|\band\b)\s*", re.IGNORECASE)


@dataclass(frozen=True)
class IsolationMethod:
    """A normalized isolation method: its ordered steps and what they imply."""

    steps: tuple[str, ...]
    matches: tuple[Match, ...]

    @property
    def code(self) -> str:
        """Canonical chained code, e.g. ``TFF+SEC``."""
        return "+".join(self.steps)

    @property
    def family(self) -> str:
        """centrifugation / size-based / precipitation / affinity, or ``combined``."""
        families = {isolation_steps()[s]["family"] for s in self.steps}
        return families.pop() if len(families) == 1 else "combined"

    @property
    def gmp_scalable(self) -> bool:
        """True when every step scales to GMP manufacturing."""
        return all(isolation_steps()[s]["gmp_scalable"] for s in self.steps)


def parse_isolation_method(text: str) -> tuple[IsolationMethod | None, list[Match]]:
    """Split a chained method (``"TFF + SEC"``, ``"UC then OptiPrep"``) and normalize each step.

    Returns the method (None if any step failed) and the per-step matches.
    """
    vocab = vocabulary("isolation_step")
    pieces = [p for p in _STEP_SPLIT.split(str(text).strip()) if p.strip()]
    whole = vocab.normalize(text)
    # A synonym can itself contain a separator word ("... followed by ..."): try whole first.
    if whole.kind == "exact" or (whole.canonical and len(pieces) > 1 and whole.score >= 95):
        pieces = [str(text)]
    matches = [vocab.normalize(p) for p in pieces] if pieces else [whole]
    if any(m.canonical is None for m in matches) or not matches:
        return None, matches
    steps: list[str] = []
    for m in matches:
        if not steps or steps[-1] != m.canonical:
            steps.append(m.canonical)  # type: ignore[arg-type]
    return IsolationMethod(tuple(steps), tuple(matches)), matches
