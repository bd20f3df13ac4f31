"""Command-line interface: ``evmeta template | validate | harmonize | import-wide | demo | run |
multiverse | lookup | reconcile | dedupe | screen-sheet | prisma | digitized | export-r | init | update | log``.

Every command catches evmeta's own errors and prints them as messages; no traceback
reaches a user for a mistake in their input. The commands live in three modules by who uses
them (``extraction``, ``analysis``, ``review``); importing them registers them on ``app``, in
the order ``--help`` lists them.
"""

from __future__ import annotations

import importlib

from evmeta.cli._app import app, main

for _module in ("extraction", "analysis", "export", "review", "project"):
    importlib.import_module(f"evmeta.cli.{_module}")


def _short_helps() -> None:
    """List each command in ``evmeta --help`` with its docstring's whole first line (click
    cuts a derived one at about 45 characters, mid-sentence)."""
    for info in app.registered_commands:
        doc = (info.help or (info.callback.__doc__ if info.callback else None) or "").strip()
        if info.short_help is None and doc:
            info.short_help = doc.splitlines()[0].strip()


_short_helps()

__all__ = ["app", "main"]
