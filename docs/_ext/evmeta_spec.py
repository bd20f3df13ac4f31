"""Sphinx extension: the analysis-spec reference, built from the spec's own pydantic models.

``.. evmeta-spec::`` (in MyST: a ``{evmeta-spec}`` directive) renders one table per spec
section, with every key, its type, its default, and its description from
``docs/reference/spec_keys.toml``. Keys come from :class:`evmeta.analysis.spec.AnalysisSpec`,
so a key added to the code appears here; ``tests/test_docs_site.py`` fails when a key has no
description or a description names a key that does not exist.
"""

from __future__ import annotations

import tomllib
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

DESCRIPTIONS = Path(__file__).resolve().parent.parent / "reference" / "spec_keys.toml"
#: Fields of AnalysisSpec that are not spec sections (set by the loader).
INTERNAL = {"source"}


def _type_text(annotation: Any) -> str:
    """A type as a reader of the spec says it: "one of "a", "b"", "list of text", ..."""
    import types

    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_text(a) for a in args if a is not type(None))
    if origin is list:
        return "list of " + _type_text(args[0]) if args else "list"
    if origin is dict:
        return "table"
    names = {str: "text", int: "integer", float: "number", bool: "true/false", typing.Any: "any value"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default_text(field) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, BaseModel):
        return "(table)"
    if value is None:
        return "not set"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(f'"{v}"' if isinstance(v, str) else str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{}" if not value else str(value)
    return str(value)


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def spec_sections() -> dict[str, list[tuple[str, str, str]]]:
    """Section name -> rows of (key, type, default), for every section of the spec.

    A key whose value is itself a table (``[bayesian.priors]``, ``[multiverse.options]``) is
    listed under its section and its own keys under ``section.key``.
    """
    from evmeta.analysis.spec import AnalysisSpec

    sections: dict[str, list[tuple[str, str, str]]] = {}

    def walk(name: str, model: type[BaseModel]) -> None:
        rows = sections.setdefault(name, [])
        for key, field in model.model_fields.items():
            inner = _model_of(field.annotation)
            if inner is not None:
                walk(f"{name}.{key}", inner)
                continue
            rows.append((key, _type_text(field.annotation), _default_text(field)))

    for key, field in AnalysisSpec.model_fields.items():
        if key in INTERNAL:
            continue
        inner = _model_of(field.annotation)
        if inner is None:  # a free table such as [moderators]
            sections[key] = [("<column>", _type_text(field.annotation), _default_text(field))]
        else:
            walk(key, inner)
    return sections


def descriptions() -> dict[str, dict[str, str]]:
    """``section -> key -> description`` from ``docs/reference/spec_keys.toml``."""
    return tomllib.loads(DESCRIPTIONS.read_text(encoding="utf-8"))


def _lookup(table: dict[str, Any], section: str) -> dict[str, str]:
    node: Any = table
    for part in section.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return {k: v for k, v in node.items() if isinstance(v, str)}


def missing_descriptions() -> list[str]:
    """Keys of the spec without a description, as ``section.key``."""
    table = descriptions()
    return [
        f"{section}.{key}"
        for section, rows in spec_sections().items()
        for key, _, _ in rows
        if key not in _lookup(table, section)
    ]


def unknown_descriptions() -> list[str]:
    """Descriptions of keys the spec does not have."""
    known = {f"{s}.{k}" for s, rows in spec_sections().items() for k, _, _ in rows}
    out = []

    def walk(prefix: str, node: dict[str, Any]) -> None:
        for key, value in node.items():
            name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, dict):
                walk(name, value)
            elif name not in known:
                out.append(name)

    walk("", descriptions())
    return out


def setup(app):  # pragma: no cover - exercised by the Sphinx build
    from docutils import nodes
    from docutils.parsers.rst import Directive

    class SpecReference(Directive):
        has_content = False

        def run(self):
            table_text = descriptions()
            out = []
            for section, rows in spec_sections().items():
                title = nodes.rubric(text=f"[{section}]")
                table = nodes.table()
                group = nodes.tgroup(cols=4)
                table += group
                for width in (18, 22, 18, 42):
                    group += nodes.colspec(colwidth=width)
                head = nodes.thead()
                group += head
                head += self._row(["key", "type", "default", "meaning"])
                body = nodes.tbody()
                group += body
                text = _lookup(table_text, section)
                for key, kind, default in rows:
                    body += self._row([key, kind, default, text.get(key, "")])
                out += [title, table]
            return out

        @staticmethod
        def _row(cells):
            row = nodes.row()
            for cell in cells:
                entry = nodes.entry()
                entry += nodes.paragraph(text=cell)
                row += entry
            return row

    app.add_directive("evmeta-spec", SpecReference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
