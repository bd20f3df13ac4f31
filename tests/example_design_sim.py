"""Data sets simulated from the bundled example's design, for the multilevel convergence tests.

The design (``tests/data/example_design.csv``: 113 comparisons, 77 experiments, 68
studies, with their isolation method, quality score and sampling variance) is the
example's analysis table (``analyses/example.toml`` -> ``evmeta.analysis.table
.analysis_table``) at the commit that added it. Effect sizes are drawn from the example's
generative model (``extraction/make_example.py``, true values in
``extraction/example_truth.json``): mu = 1.6 for UC, isolation effects, 1.2 per unit of
quality score around 0.5, study SD 0.5, experiment SD 0.3, comparison SD 0.1, plus the
sampling error of each comparison (variance ``vi``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.conftest import ROOT

DESIGN = pd.read_csv(ROOT / "tests" / "data" / "example_design.csv")
EFFECTS = {"UC": 0.0, "SEC": 0.5, "TFF+SEC": 0.7, "UC+DG": 0.45, "UF": 0.1, "precipitation": -0.5}
MODS = "~ isolation_method + quality_score"
RANDOM = ["study_id", "experiment_id"]


def simulate(seed: int) -> pd.DataFrame:
    """The design with one simulated ``yi`` column (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    study = pd.factorize(DESIGN["study_id"])[0]
    experiment = pd.factorize(DESIGN["experiment_id"])[0]
    mean = 1.6 + DESIGN["isolation_method"].map(EFFECTS).to_numpy() + 1.2 * (DESIGN["quality_score"] - 0.5)
    yi = (
        mean.to_numpy()
        + rng.normal(0, 0.5, study.max() + 1)[study]
        + rng.normal(0, 0.3, experiment.max() + 1)[experiment]
        + rng.normal(0, np.sqrt(DESIGN["vi"].to_numpy() + 0.1**2))
    )
    frame = DESIGN.assign(yi=yi)
    frame["isolation_method"] = pd.Categorical(frame["isolation_method"], categories=list(EFFECTS))
    return frame
