"""Generate ``extraction/example.xlsx``: a SIMULATED MSC-EV preclinical review.

Run ``python extraction/make_example.py`` (seeded; the same seed gives the same workbook).
It also writes ``extraction/example_truth.json`` with the true parameters, so analyses can
check that they recover them.

Generative model
----------------
Effects are on the standardized-mean-difference scale with *positive = benefit of EVs*.
For comparison i (an EV arm against its experiment's vehicle control, one outcome, one
time point) in experiment j of study s:

    delta_i = mu + beta[isolation_method] + gamma * (quality_score - 0.5)
              + lambda * (log10 dose_ug_protein_per_kg - 3) + u_s + w_j + e_i
    u_s ~ Normal(0, tau_study), w_j ~ Normal(0, tau_experiment), e_i ~ Normal(0, 0.1)

with mu = 1.6 (for differential ultracentrifugation), beta = {UC: 0, SEC: +0.5,
TFF+SEC: +0.7, UC+DG: +0.45, UF: +0.1, precipitation: -0.5}, gamma = 1.2 per unit of
quality score (fraction of the 8 MISEV items reported), lambda = 0.3 per log10 unit,
tau_study = 0.5, tau_experiment = 0.3. Arm data are then drawn at the animal level: the
control arm has mean m_c and SD sigma per outcome; the EV arm's true mean is
m_c -/+ delta_i * sigma (depending on whether higher is better); sample means and SDs are
drawn from their exact sampling distributions for n animals, so the observed Hedges' g
has the right sampling error. Outcomes are reported with SD (about 60%), SEM (30%) or
median/IQR (10%, from the same normal data); some experiments have a sham arm and a second
time point; some studies compare two preparations or two doses against one shared control.

Appended studies (issue 16; drawn from a separate random stream, seed + 16, so every row of
the 40 studies above is unchanged):

* ``N_HEAD_TO_HEAD`` head-to-head studies: one experiment, one vehicle control and three EV
  arms from the same cells that differ only in ``isolation_method`` (UC, SEC, precipitation
  with ExoQuick-TC), same dose and same characterization, as in the seed paper;
* ``N_CONFOUNDED`` single-method studies with a between-study confounder: labs that use
  precipitation kits here also use milder injury models, in which every EV effect is larger by
  ``lab_confounder_precipitation`` (+1.5 SMD); labs using UC here add nothing. A comparison of
  methods *between* studies therefore makes precipitation look better than UC, although its
  true effect is 0.5 lower; the within-study contrasts of the head-to-head studies are free of
  the confounder.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from evmeta.schema.template import write_template  # noqa: E402

SEED = 20241126
N_STUDIES = 40
N_HEAD_TO_HEAD = 8
N_CONFOUNDED = 20

TRUTH = {
    "scale": "SMD, positive = benefit of EVs",
    "mu_reference_UC": 1.6,
    "isolation_effects": {
        "UC": 0.0,
        "SEC": 0.5,
        "TFF+SEC": 0.7,
        "UC+DG": 0.45,
        "UF": 0.1,
        "precipitation": -0.5,
    },
    "quality_slope": 1.2,
    "quality_centre": 0.5,
    "log10_dose_slope": 0.3,
    "log10_dose_centre": 3.0,
    "tau_study": 0.5,
    "tau_experiment": 0.3,
    "sigma_comparison": 0.1,
    "lab_confounder_precipitation": 1.5,
}

# How each method is written in papers; the reviewer types one of these.
METHOD_SPELLINGS = {
    "UC": ["UC", "ultracentrifugation", "differential ultracentrifugation", "Ultracentrifugation"],
    "SEC": ["SEC", "size-exclusion chromatography", "qEV"],
    "TFF+SEC": ["TFF+SEC", "TFF + SEC"],
    "UC+DG": ["UC+DG", "UC + OptiPrep", "UC+sucrose gradient"],
    "UF": ["UF", "ultrafiltration", "Amicon"],
    "precipitation": ["ExoQuick", "ExoQuick-TC", "Total Exosome Isolation", "PEG precipitation"],
}
METHOD_WEIGHTS = {"UC": 0.3, "SEC": 0.14, "TFF+SEC": 0.12, "UC+DG": 0.12, "UF": 0.12, "precipitation": 0.2}
MISEV_COLUMNS = [
    "misev_source_amount",
    "misev_two_quantifications",
    "misev_quantification_ratio",
    "misev_transmembrane_protein",
    "misev_cytosolic_protein",
    "misev_negative_marker",
    "misev_single_ev_imaging",
    "misev_single_particle_sizing",
]
# Items differ in how often they are reported (TEM and CD63 often, negative markers rarely).
MISEV_PROPENSITY = np.array([0.3, -0.4, -0.8, 1.5, 0.8, -1.0, 1.2, 0.9])
SYRCLE = [
    "rob_sequence_generation",
    "rob_baseline_characteristics",
    "rob_allocation_concealment",
    "rob_random_housing",
    "rob_blinding_caregivers",
    "rob_random_outcome_assessment",
    "rob_blinding_assessor",
    "rob_incomplete_outcome_data",
    "rob_selective_reporting",
    "rob_other",
]
DISEASES = {
    "aki_ischemia_reperfusion": {
        "label": "ischemia/reperfusion AKI",
        "outcomes": [
            ("serum creatinine", "renal_function", "mg/dL", False, 1.8, 0.45, 0.35),
            ("tubular injury score", "tissue_injury", "score 0-5", False, 3.2, 0.7, 0.4),
        ],
        "times": [(24, "hours"), (72, "hours")],
        "induction": ["45 min bilateral renal pedicle clamping", "30 min unilateral clamping + nephrectomy"],
    },
    "focal_cerebral_ischemia": {
        "label": "MCAO",
        "outcomes": [
            ("infarct volume", "infarct_size", "% of hemisphere", False, 38.0, 9.0, 12.0),
            ("mNSS", "neurological_function", "score 0-18", False, 10.0, 2.2, 3.0),
        ],
        "times": [(3, "days"), (28, "days")],
        "induction": ["transient MCAO 90 min (filament)", "permanent distal MCAO (electrocoagulation)"],
    },
    "myocardial_infarction": {
        "label": "LAD ligation",
        "outcomes": [
            ("ejection fraction", "cardiac_function", "%", True, 38.0, 6.0, 70.0),
            ("infarct size", "infarct_size", "% of LV", False, 32.0, 7.0, 2.0),
        ],
        "times": [(7, "days"), (4, "weeks")],
        "induction": ["permanent LAD ligation", "LAD ischemia 30 min + reperfusion"],
    },
}
AUTHORS = [
    "Zhang",
    "Wang",
    "Li",
    "Liu",
    "Chen",
    "Yang",
    "Huang",
    "Zhao",
    "Wu",
    "Zhou",
    "Xu",
    "Sun",
    "Kim",
    "Park",
    "Lee",
    "Garcia",
    "Martinez",
    "Rossi",
    "Müller",
    "Schmidt",
    "Nakamura",
    "Tanaka",
    "Silva",
    "Santos",
    "Kowalski",
    "Novak",
    "Dubois",
    "Smith",
    "Brown",
    "Taylor",
    "Nguyen",
    "Ahmed",
    "Ivanova",
]
JOURNALS = [
    "Stem Cell Res Ther",
    "J Extracell Vesicles",
    "Theranostics",
    "Kidney Int",
    "Stroke",
    "Cardiovasc Res",
    "Stem Cells",
    "Mol Ther",
    "J Am Soc Nephrol",
    "Front Cell Dev Biol",
]


def _draw_arm(rng, true_mean, sigma, n, higher_better):
    """Sample mean and SD of n animals from Normal(true_mean, sigma)."""
    mean = rng.normal(true_mean, sigma / math.sqrt(n))
    sd = sigma * math.sqrt(rng.chisquare(n - 1) / (n - 1))
    return mean, sd


def _report(rng, row, mean, sd, n, positive_only):
    """Fill the dispersion columns the way the paper reported them."""
    style = rng.choice(["sd", "sem", "iqr"], p=[0.6, 0.3, 0.1])
    digits = 3 if abs(mean) < 10 else 2
    if positive_only:
        mean = max(mean, 0.05 * sd + 0.01)
    if style == "sd":
        row.update(mean=round(mean, digits), sd=round(sd, digits + 1))
    elif style == "sem":
        row.update(mean=round(mean, digits), sem=round(sd / math.sqrt(n), digits + 1))
    else:
        z = 0.6745
        row.update(
            median=round(mean, digits), q1=round(mean - z * sd, digits), q3=round(mean + z * sd, digits)
        )
    return row


def generate(seed: int = SEED) -> tuple[dict[str, list[dict]], dict]:
    rng = np.random.default_rng(seed)
    tables: dict[str, list[dict]] = {
        k: [] for k in ["studies", "preparations", "experiments", "arms", "outcomes", "risk_of_bias"]
    }
    truths: list[dict] = []
    methods = list(METHOD_WEIGHTS)
    probs = np.array(list(METHOD_WEIGHTS.values()))
    probs /= probs.sum()
    disease_names = list(DISEASES)
    used_ids: set[str] = set()
    # Every method appears at least twice; the rest are drawn with the weights above.
    study_methods = [*methods, *methods]
    study_methods += list(rng.choice(methods, size=N_STUDIES - len(study_methods), p=probs))
    rng.shuffle(study_methods)
    for s in range(N_STUDIES):
        author = AUTHORS[s % len(AUTHORS)]
        year = int(rng.integers(2015, 2025))
        study_id = f"{author.upper()}{year}"
        while study_id in used_ids:
            study_id += "b"
        used_ids.add(study_id)
        disease = disease_names[s % 3]
        dinfo = DISEASES[disease]
        tables["studies"].append(
            {
                "study_id": study_id,
                "first_author": author,
                "year": year,
                "title": f"Mesenchymal stromal cell-derived extracellular vesicles in a {'rat' if s % 2 else 'mouse'} model of {dinfo['label']}",
                "doi": f"10.9999/evmeta.example.{s + 1:03d}",
                "journal": str(rng.choice(JOURNALS)),
                "reviewer": str(rng.choice(["AB", "CD"])),
                "notes": "SIMULATED study (evmeta example)",
            }
        )
        u_study = rng.normal(0, TRUTH["tau_study"])
        # Preparations: most studies one, some compare a second isolation method.
        main_method = str(study_methods[s])
        prep_methods = [main_method]
        if rng.random() < 0.2:
            prep_methods.append(str(rng.choice([m for m in methods if m != main_method])))
        quality_propensity = rng.normal(0, 1.3)
        preps = []
        for p_index, method in enumerate(prep_methods, start=1):
            prep_id = f"{study_id}-P{p_index}"
            p_items = 1 / (1 + np.exp(-(quality_propensity + MISEV_PROPENSITY)))
            items = rng.random(8) < p_items
            quality = float(items.mean())
            ratio = float(10 ** rng.normal(9.6 if method == "precipitation" else 10.2, 0.35))
            prep = {
                "prep_id": prep_id,
                "study_id": study_id,
                "msc_tissue_source": str(
                    rng.choice(["bone marrow", "adipose", "umbilical cord", "BM-MSC", "Wharton's jelly"])
                ),
                "msc_species": "human" if rng.random() < 0.7 else ("rat" if s % 2 else "mouse"),
                "donor_match": None,
                "passage": int(rng.integers(2, 7)),
                "culture_system": str(rng.choice(["2D", "2D", "3D", "bioreactor"])),
                "medium": str(rng.choice(["FBS EV-depleted", "serum-free", "platelet lysate"])),
                "preconditioning": str(rng.choice(["none", "none", "none", "hypoxia", "IFN-gamma"])),
                "isolation_method": str(rng.choice(METHOD_SPELLINGS[method])),
                "cm_collection_hours": float(rng.choice([24, 48, 72])),
                "mean_size_nm": round(float(rng.normal(125, 20)), 1),
                "particles_per_ug_protein": round(ratio, -6) if items[2] else None,
                **{c: ("yes" if flag else "no") for c, flag in zip(MISEV_COLUMNS, items, strict=True)},
                "evm_protocol_reported": "yes" if rng.random() < 0.5 else "no",
                "evm_electron_microscopy": "yes" if items[6] else "no",
                "evm_antibody_specs": "yes" if rng.random() < 0.6 else "no",
                "evm_lysis_buffer": "yes" if rng.random() < 0.3 else "no",
                "evm_quantification_relative_to_input": "yes" if rng.random() < 0.3 else "no",
                "isct_plastic_adherence": "yes" if rng.random() < 0.8 else "no",
                "isct_surface_markers": "yes" if rng.random() < 0.7 else "no",
                "isct_trilineage": "yes" if rng.random() < 0.5 else "no",
            }
            prep["donor_match"] = "xenogeneic" if prep["msc_species"] == "human" else "allogeneic"
            tables["preparations"].append(prep)
            preps.append((prep, method, quality, ratio))
        # Experiments: one, sometimes two (a second species).
        n_experiments = 2 if rng.random() < 0.2 else 1
        for e_index in range(1, n_experiments + 1):
            experiment_id = f"{study_id}-E{e_index}"
            species = "rat" if (s + e_index) % 2 else "mouse"
            weight = (0.25 if species == "rat" else 0.025) * float(rng.uniform(0.85, 1.15))
            tables["experiments"].append(
                {
                    "experiment_id": experiment_id,
                    "study_id": study_id,
                    "species": species if rng.random() < 0.8 else ("Rats" if species == "rat" else "mice"),
                    "strain": "Sprague-Dawley" if species == "rat" else "C57BL/6",
                    "sex": str(rng.choice(["male", "male", "female", "mixed"])),
                    "age_weeks": float(rng.choice([8, 10, 12])),
                    "body_weight_kg": round(weight, 3) if rng.random() < 0.5 else None,
                    "disease_model": dinfo["label"] if rng.random() < 0.5 else disease,
                    "induction_method": str(rng.choice(dinfo["induction"])),
                }
            )
            w_experiment = rng.normal(0, TRUTH["tau_experiment"])
            n_per_arm = int(rng.integers(5, 13))
            arms = [
                {
                    "arm_id": f"{experiment_id}-C",
                    "experiment_id": experiment_id,
                    "role": "vehicle_control",
                    "arm_label": "vehicle (PBS)",
                    "route": None,
                    "n_animals": n_per_arm,
                }
            ]
            has_sham = rng.random() < 0.45
            if has_sham:
                arms.append(
                    {
                        "arm_id": f"{experiment_id}-S",
                        "experiment_id": experiment_id,
                        "role": "sham",
                        "arm_label": "sham",
                        "n_animals": n_per_arm,
                    }
                )
            # EV arms: one per preparation; some studies give two doses of the first one.
            ev_specs = [(prep, method, quality, ratio, 1.0) for prep, method, quality, ratio in preps]
            if len(preps) == 1 and rng.random() < 0.3:
                ev_specs.append((*preps[0], 0.25))
            route = str(rng.choice(["intravenous", "tail vein", "IP", "intra-arterial"]))
            n_doses = int(rng.choice([1, 1, 1, 2, 3]))
            ev_arms = []
            for a_index, (prep, method, quality, ratio, dose_factor) in enumerate(ev_specs, start=1):
                mass_per_animal = (
                    (100.0 if species == "rat" else 20.0) * dose_factor * float(10 ** rng.normal(0, 0.3))
                )
                actual_weight = weight
                dose_ug_per_kg = mass_per_animal / actual_weight
                arm = {
                    "arm_id": f"{experiment_id}-EV{a_index}",
                    "experiment_id": experiment_id,
                    "role": "ev",
                    "arm_label": f"EV {method}" + (" low dose" if dose_factor < 1 else ""),
                    "prep_id": prep["prep_id"],
                    "n_doses": n_doses,
                    "route": route,
                    "dose_interval_days": 1.0 if n_doses > 1 else None,
                    "timing_hours": float(rng.choice([0, 1, 2, 24])),
                    "n_animals": n_per_arm,
                }
                style = rng.choice(
                    ["ug_animal", "ug_kg", "particles_animal", "particles_kg", "cells", "text"],
                    p=[0.35, 0.15, 0.15, 0.1, 0.1, 0.15],
                )
                if style == "ug_animal":
                    arm.update(dose_value=round(mass_per_animal, 1), dose_unit="ug", dose_basis="per_animal")
                elif style == "ug_kg":
                    arm.update(
                        dose_value=round(dose_ug_per_kg / 1000, 2), dose_unit="mg", dose_basis="per_kg"
                    )
                elif style == "particles_animal":
                    arm.update(
                        dose_value=float(f"{mass_per_animal * ratio:.2e}"),
                        dose_unit="particles",
                        dose_basis="per_animal",
                    )
                elif style == "particles_kg":
                    arm.update(
                        dose_value=float(f"{dose_ug_per_kg * ratio:.2e}"),
                        dose_unit="particles",
                        dose_basis="per_kg",
                    )
                elif style == "cells":
                    arm.update(
                        dose_value=float(f"{mass_per_animal * 2e4:.1e}"),
                        dose_unit="cell equivalents",
                        dose_basis="per_animal",
                    )
                else:
                    arm["dose_text"] = str(
                        rng.choice(
                            [
                                f"{mass_per_animal:.0f} μg EVs",
                                f"{mass_per_animal * ratio:.1e} particles per animal".replace("e+", " x 10^"),
                                f"{dose_ug_per_kg / 1000:.1f} mg/kg",
                            ]
                        )
                    )
                ev_arms.append((arm, method, quality, dose_ug_per_kg))
                arms.append(arm)
            tables["arms"].extend(arms)
            # Outcomes: both outcomes of the model; a second time point in some experiments.
            times = dinfo["times"] if rng.random() < 0.35 else [dinfo["times"][int(rng.integers(0, 2))]]
            outcome_counter = 0
            for outcome, domain, unit, higher_better, control_mean, sigma, sham_mean in dinfo["outcomes"]:
                for timepoint, time_unit in times:
                    data_source = str(rng.choice(["text", "table", "figure", "figure"]))
                    rows = []
                    c_mean, c_sd = _draw_arm(rng, control_mean, sigma, n_per_arm, higher_better)
                    rows.append((arms[0], c_mean, c_sd))
                    if has_sham:
                        s_mean, s_sd = _draw_arm(rng, sham_mean, sigma * 0.6, n_per_arm, higher_better)
                        rows.append((arms[1], s_mean, s_sd))
                    for arm, method, quality, dose in ev_arms:
                        delta = (
                            TRUTH["mu_reference_UC"]
                            + TRUTH["isolation_effects"][method]
                            + TRUTH["quality_slope"] * (quality - TRUTH["quality_centre"])
                            + TRUTH["log10_dose_slope"] * (math.log10(dose) - TRUTH["log10_dose_centre"])
                            + u_study
                            + w_experiment
                            + rng.normal(0, TRUTH["sigma_comparison"])
                        )
                        true_mean = control_mean + (delta if higher_better else -delta) * sigma
                        m, sd = _draw_arm(rng, true_mean, sigma, n_per_arm, higher_better)
                        rows.append((arm, m, sd))
                        truths.append(
                            {
                                "study_id": study_id,
                                "experiment_id": experiment_id,
                                "arm_id": arm["arm_id"],
                                "outcome": outcome,
                                "timepoint": timepoint,
                                "isolation_method": method,
                                "quality_score": quality,
                                "true_smd_benefit": delta,
                            }
                        )
                    for arm, m, sd in rows:
                        outcome_counter += 1
                        row = {
                            "outcome_id": f"{experiment_id}-O{outcome_counter}",
                            "experiment_id": experiment_id,
                            "arm_id": arm["arm_id"],
                            "outcome": outcome,
                            "domain": domain,
                            "unit": unit,
                            "timepoint": timepoint,
                            "timepoint_unit": time_unit,
                            "higher_is_better": "yes" if higher_better else "no",
                            "n": arm["n_animals"],
                            "data_source": data_source,
                        }
                        tables["outcomes"].append(
                            _report(rng, row, m, sd, arm["n_animals"], positive_only=True)
                        )
        judgement = lambda p_low: str(rng.choice(["low", "unclear", "high"], p=[p_low, 0.85 - p_low, 0.15]))  # noqa: E731
        tables["risk_of_bias"].append({"study_id": study_id, **{c: judgement(0.35) for c in SYRCLE}})
    _append_isolation_studies(tables, truths, np.random.default_rng(seed + 16))
    truth = {
        **TRUTH,
        "seed": seed,
        "n_studies": N_STUDIES + N_HEAD_TO_HEAD + N_CONFOUNDED,
        "n_head_to_head": N_HEAD_TO_HEAD,
        "n_confounded": N_CONFOUNDED,
        "comparisons": truths,
    }
    return tables, truth


def _append_isolation_studies(tables: dict, truths: list, rng: np.random.Generator) -> None:
    """Head-to-head studies (UC vs SEC vs precipitation) and confounded single-method studies."""
    used = {row["study_id"] for row in tables["studies"]}
    plans = [("head_to_head", ["UC", "SEC", "precipitation"], 0.0)] * N_HEAD_TO_HEAD
    for j in range(N_CONFOUNDED):
        method = "precipitation" if j % 2 == 0 else "UC"
        lab = TRUTH["lab_confounder_precipitation"] if method == "precipitation" else 0.0
        plans.append(("single", [method], lab))
    for index, (kind, methods, lab_effect) in enumerate(plans):
        s = N_STUDIES + index
        author = AUTHORS[(7 * s) % len(AUTHORS)]
        year = int(rng.integers(2018, 2026))
        study_id = f"{author.upper()}{year}"
        while study_id in used:
            study_id += "b"
        used.add(study_id)
        disease = list(DISEASES)[s % 3]
        dinfo = DISEASES[disease]
        design = "head-to-head comparison of isolation methods" if kind == "head_to_head" else "single method"
        tables["studies"].append(
            {
                "study_id": study_id,
                "first_author": author,
                "year": year,
                "title": f"MSC-derived extracellular vesicles in {dinfo['label']}: {design}",
                "doi": f"10.9999/evmeta.example.{s + 1:03d}",
                "journal": str(rng.choice(JOURNALS)),
                "reviewer": str(rng.choice(["AB", "CD"])),
                "notes": f"SIMULATED study (evmeta example; {design})",
            }
        )
        items = rng.random(8) < 1 / (1 + np.exp(-(rng.normal(0, 1.3) + MISEV_PROPENSITY)))
        preps = [_isolation_prep(rng, study_id, p, method, items) for p, method in enumerate(methods, 1)]
        tables["preparations"].extend(preps)
        _isolation_experiment(
            rng, tables, truths, study_id, s, dinfo, disease, preps, methods, items, lab_effect
        )
        judgement = lambda p_low: str(rng.choice(["low", "unclear", "high"], p=[p_low, 0.85 - p_low, 0.15]))  # noqa: E731
        tables["risk_of_bias"].append({"study_id": study_id, **{c: judgement(0.35) for c in SYRCLE}})


def _isolation_prep(rng, study_id: str, index: int, method: str, items: np.ndarray) -> dict:
    """One preparation; all preparations of a study share cells, culture and characterization."""
    prep = {
        "prep_id": f"{study_id}-P{index}",
        "study_id": study_id,
        "msc_tissue_source": "umbilical cord",
        "msc_species": "human",
        "donor_match": "xenogeneic",
        "passage": 4,
        "culture_system": "2D",
        "medium": "serum-free",
        "preconditioning": "none",
        "isolation_method": str(rng.choice(METHOD_SPELLINGS[method])),
        "cm_collection_hours": 48.0,
        "mean_size_nm": round(float(rng.normal(125, 20)), 1),
        "particles_per_ug_protein": None,
        **{c: ("yes" if flag else "no") for c, flag in zip(MISEV_COLUMNS, items, strict=True)},
        "evm_electron_microscopy": "yes" if items[6] else "no",
    }
    return prep


def _isolation_experiment(
    rng, tables, truths, study_id, s, dinfo, disease, preps, methods, items, lab_effect
):
    """One experiment: vehicle control and one EV arm per preparation, both outcomes, one time."""
    experiment_id = f"{study_id}-E1"
    species = "rat" if s % 2 else "mouse"
    tables["experiments"].append(
        {
            "experiment_id": experiment_id,
            "study_id": study_id,
            "species": species,
            "strain": "Sprague-Dawley" if species == "rat" else "C57BL/6",
            "sex": "male",
            "age_weeks": 10.0,
            "disease_model": disease,
            "induction_method": str(rng.choice(dinfo["induction"])),
        }
    )
    u_study = rng.normal(0, TRUTH["tau_study"]) + rng.normal(0, TRUTH["tau_experiment"])
    n_per_arm = int(rng.integers(6, 13))
    mass_per_animal = (100.0 if species == "rat" else 20.0) * float(10 ** rng.normal(0, 0.3))
    dose_ug_per_kg = mass_per_animal / (0.25 if species == "rat" else 0.025)
    quality = float(items.mean())
    control = {
        "arm_id": f"{experiment_id}-C",
        "experiment_id": experiment_id,
        "role": "vehicle_control",
        "arm_label": "vehicle (PBS)",
        "n_animals": n_per_arm,
    }
    arms = [control]
    for a_index, (prep, method) in enumerate(zip(preps, methods, strict=True), start=1):
        arms.append(
            {
                "arm_id": f"{experiment_id}-EV{a_index}",
                "experiment_id": experiment_id,
                "role": "ev",
                "arm_label": f"EV {method}",
                "prep_id": prep["prep_id"],
                "n_doses": 1,
                "route": "intravenous",
                "timing_hours": 2.0,
                "n_animals": n_per_arm,
                "dose_value": round(mass_per_animal, 1),
                "dose_unit": "ug",
                "dose_basis": "per_animal",
            }
        )
    tables["arms"].extend(arms)
    timepoint, time_unit = dinfo["times"][int(rng.integers(0, 2))]
    counter = 0
    for outcome, domain, unit, higher_better, control_mean, sigma, _sham in dinfo["outcomes"]:
        rows = [(control, *_draw_arm(rng, control_mean, sigma, n_per_arm, higher_better))]
        for arm, method in zip(arms[1:], methods, strict=True):
            delta = (
                TRUTH["mu_reference_UC"]
                + TRUTH["isolation_effects"][method]
                + TRUTH["quality_slope"] * (quality - TRUTH["quality_centre"])
                + TRUTH["log10_dose_slope"] * (math.log10(dose_ug_per_kg) - TRUTH["log10_dose_centre"])
                + u_study
                + lab_effect
                + rng.normal(0, TRUTH["sigma_comparison"])
            )
            true_mean = control_mean + (delta if higher_better else -delta) * sigma
            rows.append((arm, *_draw_arm(rng, true_mean, sigma, n_per_arm, higher_better)))
            truths.append(
                {
                    "study_id": study_id,
                    "experiment_id": experiment_id,
                    "arm_id": arm["arm_id"],
                    "outcome": outcome,
                    "timepoint": timepoint,
                    "isolation_method": method,
                    "quality_score": quality,
                    "true_smd_benefit": delta,
                    "lab_effect": lab_effect,
                }
            )
        for arm, m, sd in rows:
            counter += 1
            row = {
                "outcome_id": f"{experiment_id}-O{counter}",
                "experiment_id": experiment_id,
                "arm_id": arm["arm_id"],
                "outcome": outcome,
                "domain": domain,
                "unit": unit,
                "timepoint": timepoint,
                "timepoint_unit": time_unit,
                "higher_is_better": "yes" if higher_better else "no",
                "n": arm["n_animals"],
                "data_source": "table",
            }
            tables["outcomes"].append(_report(rng, row, m, sd, arm["n_animals"], positive_only=True))


README = [
    "SIMULATED EXAMPLE: these studies are not real. They were generated by extraction/make_example.py",
    "(seed %d) from a documented model in which the isolation method and characterization quality change",
    "the true effect; the true parameters are in extraction/example_truth.json.",
]


def main(out: Path = HERE / "example.xlsx") -> None:
    tables, truth = generate()
    readme = [README[0], README[1] % SEED, README[2]]
    write_template(out, data=tables, readme=readme, overwrite=True)
    (out.parent / "example_truth.json").write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    counts = ", ".join(f"{k} {len(v)}" for k, v in tables.items())
    print(f"wrote {out} ({counts})")


if __name__ == "__main__":
    main()
