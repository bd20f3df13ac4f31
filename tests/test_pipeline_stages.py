"""A stage of `evmeta run` that stops on one of evmeta's own errors becomes a note and the
run goes on; anything else (a bug) still surfaces (issue 22 item 1)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import evmeta as em
from evmeta.analysis.stages import stage
from evmeta.results import AnalysisModels


def test_a_refused_stage_is_a_note_and_the_run_goes_on():
    @stage("bias diagnostics")
    def refused(run):
        run.models = run.models.with_(random_effects="fitted before the refusal")
        raise em.ModelError("the HTZ matrix is singular for isolation_method = precipitation")

    run = SimpleNamespace(notes=[], models=AnalysisModels())
    assert refused(run) is None
    assert run.notes == [
        "bias diagnostics: not completed (the HTZ matrix is singular for isolation_method = precipitation); "
        "the run went on without it."
    ]
    assert run.models.random_effects == "fitted before the refusal"


def test_a_bug_in_a_stage_is_not_hidden():
    @stage("sensitivity analyses")
    def buggy(run):
        return 1 / 0

    with pytest.raises(ZeroDivisionError):
        buggy(SimpleNamespace(notes=[], models={}))
