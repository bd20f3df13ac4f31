"""Vocabulary normalization: exact, fuzzy (with a note) and rejected (with suggestions)."""

import pytest

from evmeta.schema import parse_isolation_method, vocabulary


@pytest.mark.parametrize(
    ("text", "canonical", "kind"),
    [
        ("UC", "UC", "exact"),
        ("ExoQuick", "precipitation", "exact"),
        ("Exoquick-TC", "precipitation", "fuzzy"),
        ("ultra-centrifugation", "UC", "fuzzy"),
        ("size exclusion chromatograhpy", "SEC", "fuzzy"),
        ("  qEV ", "SEC", "exact"),
    ],
)
def test_isolation_steps_normalize(text, canonical, kind):
    match = vocabulary("isolation_step").normalize(text)
    assert (match.canonical, match.kind) == (canonical, kind)
    assert match.score >= 86


def test_unknown_value_lists_three_closest():
    match = vocabulary("isolation_step").normalize("centrifugal magic")
    assert match.canonical is None
    assert len(match.suggestions) == 3
    assert len(set(match.suggestions)) == 3


def test_short_codes_are_not_matched_fuzzily():
    # "UCC" is one letter from "UC" but could be anything; refuse rather than guess.
    assert vocabulary("isolation_step").normalize("UCC").canonical is None


@pytest.mark.parametrize(
    ("text", "code", "family", "gmp"),
    [
        ("TFF+SEC", "TFF+SEC", "size-based", True),
        ("TFF + size-exclusion chromatography", "TFF+SEC", "size-based", True),
        ("UC + OptiPrep", "UC+DG", "centrifugation", False),
        ("ultracentrifugation followed by SEC", "UC+SEC", "combined", False),
        ("ExoQuick", "precipitation", "precipitation", False),
        ("UF+SEC", "UF+SEC", "size-based", True),
    ],
)
def test_isolation_chains(text, code, family, gmp):
    method, _ = parse_isolation_method(text)
    assert method is not None
    assert (method.code, method.family, method.gmp_scalable) == (code, family, gmp)


def test_isolation_chain_with_unknown_step():
    method, matches = parse_isolation_method("UC+moonlight")
    assert method is None
    assert [m.canonical for m in matches] == ["UC", None]


@pytest.mark.parametrize(
    ("name", "text", "canonical"),
    [
        ("species", "Mice", "mouse"),
        ("species", "Rattus norvegicus", "rat"),
        ("route", "i.v.", "intravenous"),
        ("msc_tissue_source", "Wharton's jelly", "umbilical_cord"),
        ("syrcle_judgement", "?", "unclear"),
        ("yes_no", "Reported", "yes"),
        ("dose_unit", "μg", "ug"),
        ("dose_unit", "µg", "ug"),
    ],
)
def test_other_vocabularies(name, text, canonical):
    assert vocabulary(name).normalize(text).canonical == canonical


def test_unknown_vocabulary_name_lists_valid_names():
    with pytest.raises(KeyError, match=r"valid names: .*route"):
        vocabulary("routes")


@pytest.mark.parametrize(
    "code, vocab, words",
    [
        ("focal_cerebral_ischemia", "disease_model", "focal cerebral ischaemia"),
        ("aki_ischemia_reperfusion", "disease_model", "acute kidney injury (ischaemia-reperfusion)"),
        ("myocardial_infarction", "disease_model", "myocardial infarction"),  # no label: underscores
        ("UC", "isolation_method", "UC"),  # the field's abbreviations stay
        ("TFF+SEC", "isolation_method", "TFF+SEC"),
        ("intra_arterial", "route", "intra-arterial"),
        ("minus80", "storage", "−80 °C"),
        ("ug", "dose_unit", "µg"),
        ("vehicle_control", "role", "vehicle control"),
        ("guinea_pig", "species", "guinea pig"),
        ("low", "rob_blinding_caregivers", "low"),
        ("focal_cerebral_ischemia", "disease model", "focal cerebral ischaemia"),  # a heading as column
        ("focal_cerebral_ischemia", None, "focal cerebral ischaemia"),  # one label in all tables
        ("some_free_text", "outcome", "some free text"),
    ],
)
def test_display_label(code, vocab, words):
    from evmeta.schema import display_label

    assert display_label(code, vocab) == words


def test_display_label_of_missing_and_numbers():
    from evmeta.schema import display_label

    assert display_label(None) == "" and display_label(float("nan"), "disease_model") == ""
    assert display_label(3, "k") == "3"


def test_every_label_names_a_code_of_its_vocabulary():
    """A label for a code the vocabulary does not have would never be shown (a typo)."""
    from evmeta.data import load_toml
    from evmeta.schema import vocabularies

    known = vocabularies()
    for name, labels in load_toml("vocabulary_labels.toml").items():
        assert name in known, name
        assert set(labels) <= set(known[name].values), (name, set(labels) - set(known[name].values))
