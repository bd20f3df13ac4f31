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

__all__ = ["app", "main"]
