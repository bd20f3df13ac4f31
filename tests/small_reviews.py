"""A small review as a newcomer brings it: five studies, one per isolation method.

Study shapes follow typical MSC-EV papers (rat stroke, mouse AKI, rat myocardial
infarction with one vehicle control per route, ...); the outcome numbers are made up for
the tests. :func:`five_studies` returns the sheets as row dicts, so that a test can plant
one mistake and write the workbook with :func:`write_review`.
"""

from __future__ import annotations

import copy
from pathlib import Path

import evmeta as em
from evmeta.harmonize.quality import syrcle_columns

#: (study, isolation method, species, disease model, outcome, unit, higher is better)
_STUDIES = [
    ("LI2019", "UC", "rat", "focal_cerebral_ischemia", "infarct volume", "% of hemisphere", "no"),
    ("CHEN2020", "SEC", "mouse", "aki_ischemia_reperfusion", "serum creatinine", "mg/dL", "no"),
    ("PARK2021", "ExoQuick", "rat", "myocardial_infarction", "infarct size", "% of LV", "no"),
    ("ROSSI2018", "TFF+SEC", "mouse", "focal_cerebral_ischemia", "infarct volume", "% of hemisphere", "no"),
    ("KIM2022", "UC+DG", "rat", "aki_ischemia_reperfusion", "serum creatinine", "mg/dL", "no"),
]
#: Control mean, EV mean, SD (both arms), n per arm.
_NUMBERS = {
    "LI2019": (38.0, 24.0, 7.0, 8),
    "CHEN2020": (2.1, 1.2, 0.5, 6),
    "PARK2021": (41.0, 29.0, 6.5, 8),
    "ROSSI2018": (35.0, 27.0, 8.0, 10),
    "KIM2022": (1.9, 1.3, 0.45, 7),
}


def five_studies() -> dict[str, list[dict]]:
    """The clean review: 5 studies, 5 isolation methods; PARK2021 has two routes, each with
    its own vehicle control, paired through ``arms.control_arm_id``."""
    sheets: dict[str, list[dict]] = {
        k: [] for k in ("studies", "preparations", "experiments", "arms", "outcomes")
    }
    for year, (study, method, species, model, outcome, unit, better) in enumerate(_STUDIES, start=2018):
        sheets["studies"].append({"study_id": study, "first_author": study[:-4].title(), "year": year})
        sheets["preparations"].append(
            {
                "prep_id": f"{study}-P",
                "study_id": study,
                "msc_tissue_source": "bone marrow",
                "isolation_method": method,
            }
        )
        exp = f"{study}-E1"
        sheets["experiments"].append(
            {"experiment_id": exp, "study_id": study, "species": species, "disease_model": model}
        )
        control, ev, sd, n = _NUMBERS[study]
        routes = ["intravenous", "intramyocardial"] if study == "PARK2021" else ["intravenous"]
        for r, route in enumerate(routes, start=1):
            suffix = "" if len(routes) == 1 else str(r)
            c_arm, e_arm = f"{exp}-C{suffix}", f"{exp}-EV{suffix}"
            sheets["arms"] += [
                {"arm_id": c_arm, "experiment_id": exp, "role": "vehicle_control", "route": route},
                {
                    "arm_id": e_arm,
                    "experiment_id": exp,
                    "role": "ev",
                    "prep_id": f"{study}-P",
                    "route": route,
                    "dose_text": "100 ug" if species == "rat" else "30 ug",
                    "control_arm_id": c_arm if len(routes) > 1 else None,
                },
            ]
            for arm, mean in ((c_arm, control), (e_arm, ev - r + 1)):
                sheets["outcomes"].append(
                    {
                        "outcome_id": f"{arm}-O",
                        "experiment_id": exp,
                        "arm_id": arm,
                        "outcome": outcome,
                        "unit": unit,
                        "timepoint": 28 if species == "rat" else 2,
                        "timepoint_unit": "days",
                        "higher_is_better": better,
                        "n": n,
                        "mean": mean,
                        "sd": sd,
                    }
                )
    sheets["risk_of_bias"] = [
        {"study_id": s[0], **dict.fromkeys(syrcle_columns(), "unclear")} for s in _STUDIES
    ]
    return sheets


def write_review(folder: Path, sheets: dict[str, list[dict]] | None = None, *, xlsx: bool = False) -> Path:
    """Write ``sheets`` (default: the clean review) as a CSV folder, or as ``review.xlsx``."""
    sheets = copy.deepcopy(sheets if sheets is not None else five_studies())
    if xlsx:
        return em.write_template(folder / "review.xlsx", data=sheets)
    return em.write_template(folder, csv_dir=True, data=sheets)


def row_of(sheets: dict[str, list[dict]], sheet: str, key: str, value: str) -> tuple[int, dict]:
    """(Excel row, row dict) of the row whose ``key`` is ``value`` (header = row 1)."""
    for index, row in enumerate(sheets[sheet], start=2):
        if row.get(key) == value:
            return index, row
    raise KeyError(value)
