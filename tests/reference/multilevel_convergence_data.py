"""Write tests/reference/multilevel_convergence_yi.csv: the simulated effect sizes that
tests/reference/multilevel_convergence.R fits with metafor's rma.mv.

Run from the repository root:  python -m tests.reference.multilevel_convergence_data
Seeds: the five of the first 300 on which evmeta's Fisher scoring alone did not converge
(66, 69, 101, 105, 193) and 0..24.
"""

from __future__ import annotations

import pandas as pd

from tests.conftest import ROOT
from tests.example_design_sim import simulate

SEEDS = [66, 69, 101, 105, 193, *range(25)]

if __name__ == "__main__":
    columns = {f"y{seed}": simulate(seed)["yi"] for seed in SEEDS}
    path = ROOT / "tests" / "reference" / "multilevel_convergence_yi.csv"
    pd.DataFrame(columns).to_csv(path, index=False, float_format="%.17g")
    print(f"wrote {path}")
