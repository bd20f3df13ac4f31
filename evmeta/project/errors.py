"""The review project's own error, defined with every other in :mod:`evmeta.errors`."""

from __future__ import annotations

from evmeta.errors import ProjectError

__all__ = ["ProjectError"]
