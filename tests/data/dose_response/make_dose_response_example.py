"""Write the dose-response fixture from the bundled simulated example extraction.

Run from the repository root:
    PYTHONPATH=$PWD python tests/data/dose_response/make_dose_response_example.py [--force]
(--force to replace existing files)
Writes tests/data/dose_response/example_dosed.csv (the comparisons of the example with a
dose convertible to ug protein per kg; shared controls kept, not split) and
example_dosed_V.csv (the nonzero entries of their shared-control covariance, 1-based
row numbers, as evmeta.harmonize.shared_control_covariance computes it).
"""

import sys
from pathlib import Path

import numpy as np

import evmeta as em

HERE = Path(__file__).resolve().parent
ROOT = next(p for p in HERE.parents if (p / "pyproject.toml").exists())  # the repository
COLUMNS = [
    "comparison_id",
    "study_id",
    "experiment_id",
    "control_group_id",
    "isolation_method",
    "species",
    "measure",
    "yi",
    "vi",
    "n_treat",
    "n_control",
    "dose_ug_protein_per_kg",
    "dose_provenance_ug_protein_per_kg",
    "dose_hed_ug_protein_per_kg",
]

outputs = [HERE / "example_dosed.csv", HERE / "example_dosed_V.csv"]
if any(p.exists() for p in outputs) and "--force" not in sys.argv:
    sys.exit(f"{outputs[0].name} or {outputs[1].name} exists; pass --force to replace them")
extraction = em.read_extraction(ROOT / "extraction" / "example.xlsx")
table = em.build_comparisons(
    extraction,
    "SMD",
    outcome=["serum creatinine", "infarct volume", "infarct size"],
    timepoint="last",
    shared_control="keep",
).table
dosed = table[table["dose_ug_protein_per_kg"] > 0].reset_index(drop=True)
V = em.harmonize.shared_control_covariance(dosed)
dosed[COLUMNS].to_csv(HERE / "example_dosed.csv", index=False, float_format="%.17g")
i, j = np.nonzero(np.triu(V))
with open(HERE / "example_dosed_V.csv", "w", encoding="utf-8") as out:
    out.write("i,j,v\n")
    out.writelines(f"{a + 1},{b + 1},{V[a, b]:.17g}\n" for a, b in zip(i, j, strict=True))
