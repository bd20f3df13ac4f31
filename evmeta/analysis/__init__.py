"""Analyses as data: the TOML analysis spec, the pipeline that runs it stage by stage, and
many-specification runs built on it."""

from __future__ import annotations

from evmeta._lazy import lazy_namespace

_LAZY = {
    "AnalysisSpec": "evmeta.analysis.spec",
    "load_spec": "evmeta.analysis.spec",
    "AnalysisRun": "evmeta.analysis.pipeline",
    "AnalysisModels": "evmeta.results",
    "run_analysis": "evmeta.analysis.pipeline",
    "MultiverseRun": "evmeta.analysis.multiverse",
    "run_multiverse": "evmeta.analysis.multiverse",
}

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_namespace(__name__, _LAZY)
