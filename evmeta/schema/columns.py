"""Column specifications for every sheet of the extraction workbook.

These tables are the public contract of the workbook: the template writer, the reader,
the validator and the typed records are all generated from them.
"""

from __future__ import annotations

from dataclasses import dataclass

from evmeta.data import load_csv

#: Publication years accepted. Preclinical work on drugs, diets and procedures reaches back
#: well before the MSC-EV field (from about 2010): 1900 keeps any animal study a review may
#: include, while a year below it is almost always a typo or a misread date.
YEAR_MIN, YEAR_MAX = 1900, 2100
#: Largest absolute ``timepoint`` (in its unit): 100,000 days is about 270 years, so only a
#: typo reaches it. Negative values are time points before time zero (prenatal exposure, a
#: measurement before treatment); see docs/limits.md for the sign convention.
TIMEPOINT_LIMIT = 100000


@dataclass(frozen=True)
class Column:
    """One column of one sheet.

    Attributes
    ----------
    name : str
        Header text (snake_case).
    kind : str
        ``id``, ``ref`` (foreign key), ``text``, ``int``, ``float``, ``year``, ``doi``,
        ``pmid``, ``vocab`` (with ``vocabulary``), ``isolation`` (chained steps).
    required_header : bool
        The header must be present in the sheet.
    required : bool
        Every row must have a value.
    vocabulary : str or None
        Vocabulary name for ``vocab`` columns.
    minimum, maximum : float or None
        Allowed range (inclusive).
    positive : bool
        Value must be strictly greater than zero.
    unit : str
        Unit, shown in the header comment.
    help : str
        Meaning, shown in the header comment and the README sheet.
    references : str or None
        ``sheet.column`` this column points to (foreign keys).
    """

    name: str
    kind: str
    help: str
    required_header: bool = False
    required: bool = False
    vocabulary: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False
    unit: str = ""
    references: str | None = None


def _yes_no(name: str, label: str) -> Column:
    return Column(name, "vocab", f"{label}: yes = reported, no = not reported.", vocabulary="yes_no")


def _misev_columns() -> list[Column]:
    return [
        _yes_no(r["column"], f"MISEV item {r['item']}, {r['label']}") for r in load_csv("misev_items.csv")
    ]


def _isct_columns() -> list[Column]:
    return [
        _yes_no(r["column"], f"ISCT criterion {r['item']}, {r['label']}") for r in load_csv("isct_items.csv")
    ]


def _syrcle_columns() -> list[Column]:
    return [
        Column(
            r["column"],
            "vocab",
            f"SYRCLE item {r['item']} ({r['bias']} bias, {r['domain']}): {r['question']} low / high / unclear.",
            required_header=True,
            vocabulary="syrcle_judgement",
        )
        for r in load_csv("syrcle_items.csv")
    ]


STUDIES = [
    Column("study_id", "id", "Stable id of the publication, e.g. SMITH2021.", True, True),
    Column("first_author", "text", "Surname of the first author.", True, True),
    # From 1900: preclinical reviews (drugs, diets, procedures) include animal studies of the
    # whole 20th century; a year before it is far more often a typo or a date than a paper.
    Column("year", "year", "Publication year (1900-2100).", True, True, minimum=YEAR_MIN, maximum=YEAR_MAX),
    Column("title", "text", "Article title."),
    Column("doi", "doi", "DOI, e.g. 10.1186/s13287-021-02345-6 (no https://doi.org/ prefix needed)."),
    Column("pmid", "pmid", "PubMed id (digits only)."),
    Column("journal", "text", "Journal name."),
    Column("country", "text", "Country of the corresponding author."),
    Column("funding_industry", "vocab", "Industry funding declared: yes / no.", vocabulary="yes_no"),
    Column("reviewer", "text", "Initials of the reviewer who extracted this row."),
    Column("notes", "text", "Free text."),
    Column(
        "record_id",
        "text",
        "record_id(s) of this study's report(s) in the screening log, e.g. 12 or 12; 40 (for PRISMA).",
    ),
]

PREPARATIONS = [
    Column("prep_id", "id", "Stable id of the EV preparation, e.g. SMITH2021-P1.", True, True),
    Column(
        "study_id", "ref", "Study this preparation belongs to.", True, True, references="studies.study_id"
    ),
    Column(
        "msc_tissue_source", "vocab", "Tissue the MSCs came from.", True, True, vocabulary="msc_tissue_source"
    ),
    Column("msc_species", "vocab", "Species of the MSC donor.", vocabulary="species"),
    Column("donor_match", "vocab", "Donor relative to the recipient animal.", vocabulary="donor_match"),
    Column("passage", "int", "MSC passage at conditioned-medium collection.", minimum=0, maximum=100),
    Column("culture_system", "vocab", "2D flask, 3D spheroid or bioreactor.", vocabulary="culture_system"),
    Column("medium", "vocab", "Medium during conditioning.", vocabulary="medium"),
    Column("preconditioning", "vocab", "Priming of the MSCs.", vocabulary="preconditioning"),
    Column(
        "isolation_method",
        "isolation",
        "Separation steps in order, joined by '+', e.g. UC, SEC, TFF+SEC, UC+DG, ExoQuick.",
        True,
        True,
    ),
    Column(
        "cm_collection_hours",
        "float",
        "Conditioned-medium collection time.",
        minimum=0,
        maximum=2000,
        unit="h",
    ),
    Column("storage", "vocab", "Storage before use.", vocabulary="storage"),
    Column(
        "mean_size_nm", "float", "Mean or modal particle diameter.", positive=True, maximum=5000, unit="nm"
    ),
    Column(
        "particles_per_ug_protein",
        "float",
        "Particles per ug protein, if reported (purity indicator).",
        positive=True,
        unit="particles/ug",
    ),
    *_misev_columns(),
    _yes_no("evm_protocol_reported", "EV-METRIC: separation protocol fully reported (g-force, time, rotor)"),
    _yes_no("evm_electron_microscopy", "EV-METRIC: electron microscopy images"),
    _yes_no("evm_antibody_specs", "EV-METRIC: antibody specifications"),
    _yes_no("evm_lysis_buffer", "EV-METRIC: lysis-buffer composition"),
    _yes_no("evm_quantification_relative_to_input", "EV-METRIC: quantification relative to input"),
    Column("evtrack_id", "text", "EV-TRACK id (e.g. EV190042), if reported."),
    Column("evmetric_reported", "float", "EV-METRIC reported by EV-TRACK.", minimum=0, maximum=100, unit="%"),
    *_isct_columns(),
    Column(
        "preparation_kind",
        "vocab",
        "msc_ev (blank = msc_ev) or non_ev: another intervention (a drug, diet, procedure or cells), "
        "whose isolation, MISEV and EV-dose fields are not scored and whose masses are drug doses.",
        vocabulary="preparation_kind",
    ),
    Column("notes", "text", "Free text."),
]

EXPERIMENTS = [
    Column("experiment_id", "id", "Stable id of the animal cohort, e.g. SMITH2021-E1.", True, True),
    Column("study_id", "ref", "Study this experiment belongs to.", True, True, references="studies.study_id"),
    Column("species", "vocab", "Recipient species.", True, True, vocabulary="species"),
    Column("strain", "text", "Strain, e.g. C57BL/6, Sprague-Dawley."),
    Column("sex", "vocab", "Sex of the animals.", vocabulary="sex"),
    Column("age_weeks", "float", "Age at induction.", positive=True, maximum=500, unit="weeks"),
    Column(
        "body_weight_kg", "float", "Mean body weight, if reported.", positive=True, maximum=500, unit="kg"
    ),
    Column("disease_model", "vocab", "Disease model.", True, True, vocabulary="disease_model"),
    Column("induction_method", "text", "How the disease was induced, e.g. 45 min bilateral clamping."),
    Column("notes", "text", "Free text."),
]

ARMS = [
    Column("arm_id", "id", "Stable id of the group of animals, e.g. SMITH2021-E1-A1.", True, True),
    Column(
        "experiment_id",
        "ref",
        "Experiment this arm belongs to.",
        True,
        True,
        references="experiments.experiment_id",
    ),
    Column(
        "role", "vocab", "ev / vehicle_control / sham / positive_control.", True, True, vocabulary="arm_role"
    ),
    Column("arm_label", "text", "Short label used in figures, e.g. 'EV high dose'."),
    Column(
        "prep_id",
        "ref",
        "EV preparation given (required for ev arms).",
        True,
        references="preparations.prep_id",
    ),
    Column(
        "control_arm_id",
        "ref",
        "For an ev arm: the arm_id of its vehicle_control arm. Needed when the experiment has "
        "several vehicle controls for one outcome and time point (e.g. one per route); optional otherwise.",
        references="arms.arm_id",
    ),
    Column("dose_value", "float", "Dose per administration, number only.", positive=True),
    Column(
        "dose_unit",
        "vocab",
        "ug, mg, ng (protein; a drug's mass in a non-EV arm), particles, cell_equivalents, mL or uL "
        "(conditioned medium); nmol, umol, mg_per_kg_diet for a drug.",
        vocabulary="dose_unit",
    ),
    Column("dose_basis", "vocab", "per_animal, per_kg or per_organ (per kidney, eye, joint...).", vocabulary="dose_basis"),
    Column(
        "dose_text",
        "text",
        "Dose as printed in the paper, e.g. '1.5 x 10^9 particles/kg' (used when value/unit are blank).",
    ),
    # maximum = evmeta.schema.doses.schedule.MAX_DOSES (not imported: its imports lead back here)
    Column("n_doses", "int", "Number of administrations.", minimum=1, maximum=1000),
    Column(
        "dose_interval_days", "float", "Days between administrations.", minimum=0, maximum=1000, unit="days"
    ),
    Column("route", "vocab", "Route of administration.", vocabulary="route"),
    Column(
        "timing_hours",
        "float",
        "Time of first dose relative to injury (negative = before).",
        minimum=-10000,
        maximum=10000,
        unit="h",
    ),
    Column("n_animals", "int", "Animals allocated to the arm.", minimum=1, maximum=100000),
    Column("notes", "text", "Free text."),
]

OUTCOMES = [
    Column("outcome_id", "id", "Stable id of the row, e.g. SMITH2021-O1.", True, True),
    Column("experiment_id", "ref", "Experiment.", True, True, references="experiments.experiment_id"),
    Column("arm_id", "ref", "Arm whose animals were measured.", True, True, references="arms.arm_id"),
    Column("outcome", "text", "Outcome name, e.g. serum creatinine, infarct volume.", True, True),
    Column("domain", "vocab", "Outcome domain.", vocabulary="outcome_domain"),
    Column("unit", "text", "Unit of the measurement, e.g. mg/dL, % of hemisphere."),
    # Negative time points are allowed: a measurement before time zero (docs/limits.md).
    Column(
        "timepoint",
        "float",
        "Time of measurement from the experiment's time zero (the injury or disease induction; "
        "the first treatment when there is none); negative = before it, e.g. a prenatal or "
        "pre-treatment measurement.",
        minimum=-TIMEPOINT_LIMIT,
        maximum=TIMEPOINT_LIMIT,
    ),
    Column("timepoint_unit", "vocab", "hours / days / weeks (default days).", vocabulary="timepoint_unit"),
    Column(
        "higher_is_better",
        "vocab",
        "yes when higher values mean benefit (e.g. ejection fraction).",
        True,
        True,
        vocabulary="yes_no",
    ),
    Column(
        "n", "int", "Animals analysed in this arm for this outcome.", True, True, minimum=1, maximum=100000
    ),
    Column("mean", "float", "Arm mean."),
    Column("sd", "float", "Standard deviation.", positive=True),
    Column("sem", "float", "Standard error of the mean.", positive=True),
    Column("ci_lower", "float", "Lower 95% confidence limit of the mean."),
    Column("ci_upper", "float", "Upper 95% confidence limit of the mean."),
    Column("median", "float", "Median."),
    Column("q1", "float", "First quartile."),
    Column("q3", "float", "Third quartile."),
    Column("min", "float", "Minimum."),
    Column("max", "float", "Maximum."),
    Column("events", "int", "Animals with the event (binary outcomes).", minimum=0),
    Column("total", "int", "Animals at risk (binary outcomes).", minimum=1),
    Column("data_source", "vocab", "text / table / figure / supplement / author.", vocabulary="data_source"),
    Column("notes", "text", "Free text."),
]

RISK_OF_BIAS = [
    Column("study_id", "ref", "Study judged.", True, True, references="studies.study_id"),
    Column(
        "experiment_id",
        "ref",
        "Experiment judged, when judgements differ between experiments of one study.",
        references="experiments.experiment_id",
    ),
    *_syrcle_columns(),
    Column("notes", "text", "Support for the judgements."),
]

#: Sheet name -> column specifications, in workbook order.
SHEETS: dict[str, list[Column]] = {
    "studies": STUDIES,
    "preparations": PREPARATIONS,
    "experiments": EXPERIMENTS,
    "arms": ARMS,
    "outcomes": OUTCOMES,
    "risk_of_bias": RISK_OF_BIAS,
}

#: What one row of each sheet is (README sheet and docs).
SHEET_DESCRIPTIONS = {
    "studies": "one publication",
    "preparations": "one EV preparation (an MSC-EV batch isolated one way)",
    "experiments": "one animal cohort under one disease model",
    "arms": "one group of animals (EV-treated, vehicle control, sham or positive control)",
    "outcomes": "one outcome measured in one arm at one time point",
    "risk_of_bias": "SYRCLE risk-of-bias judgements for one study (or one experiment)",
}

#: The id column of each sheet (risk_of_bias rows are keyed by study/experiment).
ID_COLUMNS = {
    "studies": "study_id",
    "preparations": "prep_id",
    "experiments": "experiment_id",
    "arms": "arm_id",
    "outcomes": "outcome_id",
}


def column_map(sheet: str) -> dict[str, Column]:
    """Column name -> spec for one sheet."""
    return {c.name: c for c in SHEETS[sheet]}
