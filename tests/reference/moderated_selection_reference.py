"""Record the log marginal likelihoods of the ensemble's selection models with moderators from
the nested quadrature of commit 48fe8cc (tensor trapezoid grids; numeric slopes as outer axes),
the reference for tests/test_bias_moderated_selection_quadrature.py.

Run from the repository root (``git show 48fe8cc:evmeta/models/bias/moderated_selection.py >
/tmp/old_moderated_selection.py`` first)::

    .venv/bin/python tests/reference/moderated_selection_reference.py /tmp/old_moderated_selection.py

It rewrites ``tests/reference/moderated_selection_48fe8cc.json`` (about 2 minutes).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import sys
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent  # the repository root
sys.path.insert(0, str(ROOT))

from evmeta.models.bias.marginal import EnsemblePriors  # noqa: E402
from evmeta.models.bias.moderator_terms import encode_moderators  # noqa: E402
from tests.test_bias_moderated_selection_quadrature import CASES, data  # noqa: E402


def main(old_module: str) -> None:
    spec = importlib.util.spec_from_file_location("old_moderated_selection", old_module)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    rows = []
    for (k, levels, seed), sets in CASES.items():
        frame = data(k, levels, seed)
        terms = encode_moderators(frame, "~ method + dose")
        for included, effect, heterogeneity in itertools.product(sets, (True, False), (True, False)):
            fit = old.moderated_selection_marginal(
                frame["yi"].to_numpy(), frame["vi"].to_numpy(), EnsemblePriors(), terms,
                frozenset(included), effect=effect, heterogeneity=heterogeneity, cut=0.025,
            )  # fmt: skip
            rows.append(
                {
                    "case": f"k{k}l{levels}",
                    "included": sorted(included),
                    "effect": effect,
                    "heterogeneity": heterogeneity,
                    "log_ml": fit.log_ml,
                    "error": fit.error,
                    "mu_mean": fit.mu_mean,
                    "level_means": [float(np.sum(w * m)) for m, _s, w in fit.level_components],
                }
            )
    out = {
        "source": "evmeta commit 48fe8cc, moderated_selection_marginal, EnsemblePriors(), cut 0.025",
        "cases": rows,
    }
    (TESTS / "reference" / "moderated_selection_48fe8cc.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1])
