"""The review project's own error: a refused project operation, said in one sentence."""

from __future__ import annotations

from evmeta.errors import EvmetaError


class ProjectError(EvmetaError):
    """A review project cannot be created, opened or updated; the message names the folder,
    file or database and what to do."""


__all__ = ["ProjectError"]
