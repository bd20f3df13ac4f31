"""The map of ``evmeta import-wide``: which table column holds each evmeta field.

A map is a TOML file with three sections: ``[columns]`` (evmeta field = the table's header
text), ``[constants]`` (evmeta field = one value for every row, for fields the table lacks)
and ``[options]`` (``control_n_is_split``). It is read as UTF-8 (a byte-order mark and
Windows line ends are accepted), from a regular file of at most :data:`MAX_MAP_BYTES`; every
problem is a :class:`evmeta.errors.SpecError` naming the file and the key.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evmeta._paths import read_bytes_capped
from evmeta.errors import PathError, SpecError

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
#: Largest map file read, in bytes (a map is a few hundred bytes).
MAX_MAP_BYTES = 1024 * 1024


@dataclass(frozen=True)
class WideMap:
    """A parsed map: evmeta field -> table header, constants, and options."""

    columns: dict[str, str]
    constants: dict[str, Any] = field(default_factory=dict)
    control_n_is_split: bool = False


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


def _sections(data: dict[str, Any], source: str) -> tuple[dict, dict, dict]:
    unknown = sorted(set(data) - {"columns", "constants", "options"})
    if unknown:
        raise SpecError(
            f"{source}: unknown section(s) {unknown}; valid sections: columns, constants, options"
        )
    out = []
    for name in ("columns", "constants", "options"):
        section = data.get(name, {})
        if not isinstance(section, dict):
            raise SpecError(f"{source}: {name} must be a section ([{name}]), got {type(section).__name__}")
        out.append(dict(section))
    return out[0], out[1], out[2]


def _check_values(columns: dict, constants: dict, source: str) -> None:
    """[columns] values are header texts; [constants] values are single values."""
    for key, value in columns.items():
        if not isinstance(value, str) or not value.strip():
            raise SpecError(
                f"{source}: columns.{key} must be the table's header text (a string), got {value!r}"
            )
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
    columns, constants, options = _sections(data, source)
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
    return WideMap(
        {k: str(v) for k, v in columns.items()}, constants, bool(options.get("control_n_is_split", False))
    )
