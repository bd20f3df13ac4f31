"""The map of ``evmeta import-wide``: which table column holds each evmeta field.

A map is a TOML file with up to five sections: ``[columns]`` (evmeta field = the table's
header text), ``[constants]`` (evmeta field = one value for every row, for fields the table
lacks), ``[options]`` (``control_n_is_split``), ``[moderators]`` (the reviewer's own
columns kept as moderators: name = header, or a list of headers whose first non-empty cell
is taken) and ``[risk_of_bias]`` (SYRCLE item = header, with an optional
``[risk_of_bias.values]`` table of the table's judgement words). It is read as UTF-8 (a
byte-order mark and Windows line ends are accepted), from a regular file of at most
:data:`MAX_MAP_BYTES`; every problem is a :class:`evmeta.errors.SpecError` naming the file
and the key.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evmeta._paths import read_bytes_capped
from evmeta.data import load_csv
from evmeta.errors import PathError, SpecError
from evmeta.schema.columns import SHEETS

STUDY_FIELDS = ("study_id", "first_author", "year", "title", "doi")
EXPERIMENT_FIELDS = ("species", "strain", "sex", "disease_model")
OUTCOME_FIELDS = ("outcome", "unit", "timepoint", "timepoint_unit", "higher_is_better")
ARM_FIELDS = ("dose_text", "route", "treat_label")
PREP_FIELDS = ("isolation_method", "msc_tissue_source", "preparation_kind")
STATISTICS = ("n", "mean", "sd", "sem", "median", "q1", "q3", "events", "total")
ARM_STATISTICS = tuple(f"{arm}_{s}" for arm in ("treat", "control") for s in STATISTICS)
#: Every field a map may name, in [columns] or [constants].
FIELDS = (*STUDY_FIELDS, *EXPERIMENT_FIELDS, *OUTCOME_FIELDS, *ARM_FIELDS, *PREP_FIELDS, *ARM_STATISTICS)
OPTIONS = ("control_n_is_split",)
SECTIONS = ("columns", "constants", "options", "moderators", "risk_of_bias")
#: The SYRCLE item columns of the risk_of_bias sheet, in item order.
SYRCLE_ITEMS = tuple(row["column"] for row in load_csv("syrcle_items.csv"))
#: Judgement words read without a ``[risk_of_bias.values]`` entry (case-insensitive).
#: SYRCLE's questions are phrased so that "yes" means low risk ("Was the allocation
#: sequence adequately generated?"), hence Y/yes -> low and N/no -> high.
ROB_WORDS = {
    **dict.fromkeys(("low", "low risk", "l", "+", "y", "yes"), "low"),
    **dict.fromkeys(("high", "high risk", "h", "-", "n", "no"), "high"),
    **dict.fromkeys(("unclear", "unclear risk", "u", "?", "not reported", "nr", "unknown"), "unclear"),
}
JUDGEMENTS = ("low", "high", "unclear")
#: Columns of the comparison table that evmeta computes (build_comparisons); a moderator
#: may not take one of these names (tests/test_wide_import.py checks the list is complete).
COMPARISON_COLUMNS = frozenset(
    """comparison_id study_id experiment_id outcome timepoint timepoint_label label measure yi vi
    sei n_treat n_control n_control_reported control_split_among control_group_id mean_treat
    sd_treat mean_control sd_control events_treat total_treat events_control total_control
    mean_sham direction_flipped effect_conversion higher_is_better dispersion_source_treat
    dispersion_source_control data_source arm_id control_arm_id prep_id species strain sex
    disease_model route timing_hours first_author year unit domain isolation_method
    isolation_family isolation_gmp_scalable msc_tissue_source msc_species donor_match
    culture_system medium preconditioning particles_per_ug_protein quality_score
    misev_items_reported evmetric_like isct_count purity_class rob_low_count
    rob_low_randomization_blinding log10_dose_ug_protein_per_kg source_file treat_outcome_row
    control_outcome_row sham_outcome_row treat_outcome_id control_outcome_id""".split()
)
#: Prefixes of computed comparison columns (doses per basis, their provenance).
COMPARISON_PREFIXES = ("dose_", "log10_dose")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
#: Largest map file read, in bytes (a map is a few hundred bytes).
MAX_MAP_BYTES = 1024 * 1024


@dataclass(frozen=True)
class WideMap:
    """A parsed map: evmeta field -> table header, constants, and options."""

    columns: dict[str, str]
    constants: dict[str, Any] = field(default_factory=dict)
    control_n_is_split: bool = False
    #: Moderator name -> the table headers read for it (the first non-empty cell is taken).
    moderators: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: SYRCLE item column (``rob_sequence_generation``, ...) -> the table header.
    risk_of_bias: dict[str, str] = field(default_factory=dict)
    #: Judgement word (casefolded, stripped) -> low / high / unclear: :data:`ROB_WORDS`
    #: updated with the map's ``[risk_of_bias.values]``.
    rob_values: dict[str, str] = field(default_factory=lambda: dict(ROB_WORDS))

    def headers(self) -> set[str]:
        """Every table header the map reads ([columns], [moderators], [risk_of_bias])."""
        read = set(self.columns.values()) | set(self.risk_of_bias.values())
        return read.union(*self.moderators.values())


def toml_text(data: bytes, source: str) -> str:
    """UTF-8 text of a TOML file, without a byte-order mark (SpecError when not UTF-8)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"{source}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    return text.removeprefix("\ufeff")


def read_map(path: str | Path) -> WideMap:
    """Read and check a map TOML file (keys are listed in the module docstring)."""
    path = Path(path)
    try:
        data = read_bytes_capped(path, what="map", max_bytes=MAX_MAP_BYTES)
    except PathError as exc:
        raise SpecError(str(exc)) from None
    try:
        parsed = tomllib.loads(toml_text(data, str(path)))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise SpecError(f"{path}: not valid TOML: nested too deeply") from None
    return parse_map(parsed, source=str(path))


def _sections(data: dict[str, Any], source: str) -> list[dict]:
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise SpecError(f"{source}: unknown section(s) {unknown}; valid sections: {', '.join(SECTIONS)}")
    out = []
    for name in SECTIONS:
        section = data.get(name, {})
        if not isinstance(section, dict):
            raise SpecError(f"{source}: {name} must be a section ([{name}]), got {type(section).__name__}")
        out.append(dict(section))
    return out


def _header(value: Any, where: str, source: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"{source}: {where} must be the table's header text (a string), got {value!r}")
    return value.strip()


#: Schema column name -> where it lives, for the collision message.
_SCHEMA_COLUMNS = {c.name: f"{sheet}.{c.name}" for sheet, cols in reversed(SHEETS.items()) for c in cols}


def _moderators(section: dict[str, Any], source: str) -> dict[str, tuple[str, ...]]:
    """``[moderators]``: snake_case names that are not schema or comparison columns."""
    out: dict[str, tuple[str, ...]] = {}
    for name, value in section.items():
        if not _NAME.match(name):
            raise SpecError(
                f"{source}: moderators.{name}: a moderator name must be lower-case letters, digits and "
                "underscores, starting with a letter (it is used in formulas such as '~ drug_class')"
            )
        computed = name in COMPARISON_COLUMNS or name.startswith(COMPARISON_PREFIXES)
        taken = _SCHEMA_COLUMNS.get(name) or (f"the comparison table's {name}" if computed else None)
        if taken or name in FIELDS:
            raise SpecError(
                f"{source}: moderators.{name} has the name of the schema column {taken or name} "
                f"(map it under [columns] if it is that field); choose another name, e.g. {name}_table"
            )
        headers = value if isinstance(value, list) else [value]
        if not headers:
            raise SpecError(f"{source}: moderators.{name} names no column")
        out[name] = tuple(_header(h, f"moderators.{name}", source) for h in headers)
    return out


def _risk_of_bias(section: dict[str, Any], source: str) -> tuple[dict[str, str], dict[str, str]]:
    """``[risk_of_bias]``: SYRCLE item (with or without ``rob_``) = header; ``values``."""
    words = dict(ROB_WORDS)
    extra = section.pop("values", {})
    if not isinstance(extra, dict):
        raise SpecError(f"{source}: risk_of_bias.values must be a table ([risk_of_bias.values])")
    for word, judgement in extra.items():
        if str(judgement).strip().casefold() not in JUDGEMENTS:
            raise SpecError(
                f"{source}: risk_of_bias.values.{word!r} must be one of {', '.join(JUDGEMENTS)}, got {judgement!r}"
            )
        words[str(word).strip().casefold()] = str(judgement).strip().casefold()
    items: dict[str, str] = {}
    for key, value in section.items():
        item = key if key.startswith("rob_") else f"rob_{key}"
        if item not in SYRCLE_ITEMS:
            valid = ", ".join(i.removeprefix("rob_") for i in SYRCLE_ITEMS)
            raise SpecError(f"{source}: unknown SYRCLE item risk_of_bias.{key}; valid items: {valid}")
        if item in items:
            raise SpecError(f"{source}: risk_of_bias names {item} twice ({key})")
        items[item] = _header(value, f"risk_of_bias.{key}", source)
    return items, words


def _check_values(columns: dict, constants: dict, source: str) -> None:
    """[columns] values are header texts; [constants] values are single values."""
    for key, value in columns.items():
        _header(value, f"columns.{key}", source)
    for key, value in constants.items():
        if isinstance(value, (list, dict)):
            raise SpecError(
                f"{source}: constants.{key} must be one value for every row (text, a number, "
                f"true/false), got a {'list' if isinstance(value, list) else 'table'}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"{source}: constants.{key} must be a finite number, got {value!r}")


def parse_map(data: dict[str, Any], source: str = "map") -> WideMap:
    """Check a map given as a dict (as read from TOML)."""
    columns, constants, options, moderators, rob = _sections(data, source)
    for section, keys, valid in [
        ("columns", columns, FIELDS),
        ("constants", constants, FIELDS),
        ("options", options, OPTIONS),
    ]:
        bad = sorted(set(keys) - set(valid))
        if bad:
            raise SpecError(f"{source}: unknown key(s) {bad} in [{section}]; valid keys: {', '.join(valid)}")
    _check_values(columns, constants, source)
    both = sorted(set(columns) & set(constants))
    if both:
        raise SpecError(f"{source}: {both} are in both [columns] and [constants]; keep one")
    if not isinstance(options.get("control_n_is_split", False), bool):
        raise SpecError(f"{source}: options.control_n_is_split must be true or false")
    given = set(columns) | set(constants)
    missing = [f for f in ("study_id", "treat_n", "control_n") if f not in given]
    if "study_id" not in columns:
        missing = sorted(set(missing) | {"study_id"})
    if missing:
        raise SpecError(f"{source}: [columns] needs {', '.join(missing)} (the table's header for each)")
    for arm in ("treat", "control"):
        if not any(f"{arm}_{s}" in given for s in ("mean", "median", "events")):
            raise SpecError(
                f"{source}: [columns] maps no statistic for the {arm} arm; give {arm}_mean with {arm}_sd "
                f"or {arm}_sem, {arm}_median with {arm}_q1/{arm}_q3, or {arm}_events with {arm}_total"
            )
    items, words = _risk_of_bias(rob, source)
    return WideMap(
        {k: str(v).strip() for k, v in columns.items()},
        constants,
        bool(options.get("control_n_is_split", False)),
        _moderators(moderators, source),
        items,
        words,
    )
