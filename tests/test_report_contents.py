"""Issue 27 item 5 in report.html: a table of contents whose every link resolves to a
section heading with a stable, unique id, listing exactly the sections the run printed;
vocabulary values in words, particle doses as powers of ten, doses from a reference body
weight marked."""

from __future__ import annotations

import dataclasses
import re
from html.parser import HTMLParser

import pytest

import evmeta as em
from evmeta.report.contents import MARKER, add_contents, slug
from evmeta.report.html import write_report
from tests.conftest import ROOT


class _Page(HTMLParser):
    """Every id of a page, its h2 headings (id, text) and the contents' links, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.headings: list[list[str]] = []
        self.links: list[str] = []
        self._in_h2 = False
        self._in_nav = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "nav" and attrs.get("id") == "contents":
            self._in_nav = True
        if tag == "a" and self._in_nav:
            self.links.append(attrs["href"])
        if tag == "h2":
            self._in_h2 = True
            self.headings.append([attrs.get("id"), ""])

    def handle_endtag(self, tag):
        if tag == "h2":
            self._in_h2 = False
        if tag == "nav":
            self._in_nav = False

    def handle_data(self, data):
        if self._in_h2:
            self.headings[-1][1] += data


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _assert_navigable(text: str) -> _Page:
    page = _parse(text)
    assert page.headings, "no section headings"
    assert all(anchor for anchor, _ in page.headings), "an h2 without an id"
    duplicates = sorted({i for i in page.ids if page.ids.count(i) > 1})
    assert not duplicates, f"ids used twice: {duplicates[:10]}"
    assert page.links == [f"#{anchor}" for anchor, _ in page.headings]  # every h2, in page order
    assert all(link[1:] in page.ids for link in page.links)
    return page


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("contents")
    return em.run_analysis(ROOT / "analyses" / "example.toml", output=out, quiet=True)


@pytest.fixture(scope="module")
def report(run) -> str:
    return (run.output / "report.html").read_text(encoding="utf-8")


def test_every_contents_link_resolves_to_a_listed_heading(report):
    page = _assert_navigable(report)
    anchors = [anchor for anchor, _ in page.headings]
    # Stable anchors an author can quote (report.html#methods), the optional sections' own ids.
    for anchor in ["methods", "forest-plot", "models", "subgroups", "bayesian", "small-study-effects",
                   "publication-bias", "sensitivity", "dose-response-curve", "consistency", "certainty",
                   "risk-of-bias-assessment", "included-studies", "exclusions", "provenance", "references"]:  # fmt: skip
        assert anchor in anchors, anchor
    assert report.index('<nav id="contents"') < report.index('<h2 id="methods">')
    assert MARKER not in report


def test_contents_list_only_the_sections_a_run_has(run, tmp_path):
    """A run without the Bayesian model, the bias analyses and the optional sections: its
    contents name none of them, and still resolve."""
    models = run.models.with_(bayesian=None, selection_model=None, bias_averaging={})
    tables = run.tables.with_(isolation_evidence=None)
    bare = dataclasses.replace(
        run, models=models, tables=tables, recovery=None, report_sections=[], output=tmp_path
    )
    page = _assert_navigable(write_report(bare).read_text(encoding="utf-8"))
    anchors = [anchor for anchor, _ in page.headings]
    for absent in ["bayesian", "publication-bias", "isolation-methods", "dose-response-curve", "certainty"]:
        assert absent not in anchors, absent
    assert {"methods", "forest-plot", "sensitivity", "references"} <= set(anchors)


def test_add_contents_keeps_given_ids_and_makes_the_rest_unique():
    page = (
        "<h1>t</h1>" + MARKER + '<figure id="forest"></figure><h2 id="methods">Methods</h2>'
        "<h2>Forest</h2><h2>Notes &amp; more</h2><h2>Notes &amp; more</h2><svg><g id=\"notes-more\"/></svg>"
    )
    text, entries = add_contents(page)
    assert [e.anchor for e in entries] == ["methods", "forest-2", "notes-more-2", "notes-more-3"]
    assert [e.title for e in entries] == ["Methods", "Forest", "Notes & more", "Notes & more"]
    _assert_navigable(text)
    assert slug("<em>Small-study</em> effects (k = 5)") == "small-study-effects-k-5"


def test_the_page_has_no_contents_without_headings():
    text, entries = add_contents(f"<p>{MARKER}</p>")
    assert entries == [] and text == "<p></p>"


def test_inlined_figures_do_not_share_ids(report):
    """matplotlib names every figure's parts alike; inlined, each SVG's ids carry its file's
    name, and the references inside it follow."""
    ids = set(re.findall(r'\sid="([^"]+)"', report))
    for ref in re.findall(r"url\(#([^)]+)\)", report) + re.findall(r'href="#([^"]+)"', report):
        assert ref in ids, ref
    assert 'id="forest-1-figure_1"' in report and 'id="figure_1"' not in report


def _text_outside_figures(report: str) -> str:
    return re.sub(r"<[^>]+>", " ", re.sub(r"<svg.*?</svg>", "", report, flags=re.S))


def test_vocabulary_values_are_words_in_the_report(run, report):
    """The disease models of the example, in the subgroup table, the summary of findings and
    the figures: as words; comparisons.csv keeps the codes."""
    words = {"focal cerebral ischaemia", "acute kidney injury (ischaemia-reperfusion)", "myocardial infarction"}
    assert set(run.tables.pooled["disease_model"]) == {
        "focal_cerebral_ischemia", "aki_ischemia_reperfusion", "myocardial_infarction"
    }  # fmt: skip
    for code in ["focal_cerebral_ischemia", "aki_ischemia_reperfusion", "myocardial_infarction"]:
        assert code not in report, code
    block = report[report.index("<h3>By disease model</h3>") :][:4000]
    for word in words:
        assert word in block, word
    assert "focal cerebral ischaemia" in report[report.index('<h2 id="certainty"') :]
    assert "focal_cerebral_ischemia" in (run.output / "comparisons.csv").read_text(encoding="utf-8")


def test_particle_doses_and_reference_weights_in_the_report(report):
    """Doses (the dose-response section, the notes, the exclusion log) never in e-notation."""
    doses = report[report.index('<h2 id="dose-response-curve"') : report.index('<h2 id="consistency"')]
    notes = report[report.index('<div class="warn">') : report.index('<h2 id="methods">')]
    exclusions = report[report.index('<h2 id="exclusions"') : report.index('<h2 id="provenance"')]
    for part in (doses, notes, exclusions):
        text = _text_outside_figures(part)
        assert not re.search(r"\d(?:\.\d+)?e[+−-]?\d", text), re.findall(r"\S*\de[+−-]?\d\S*", text)[:5]
    forest = report[report.index('<figure id="forest"') :]
    forest = forest[: forest.index("</figure>")]
    assert re.search(r"\d\.\d × 10[⁰¹²³⁴⁵⁶⁷⁸⁹]+ p/kg", forest)
    section = report[report.index('<h2 id="dose-response-curve"') :]
    sentence = re.search(r'<p class="small" id="dose-reference-weight">(.*?)</p>', section).group(1)
    assert re.match(r"\d+ of the \d+ doses were reported per animal", sentence)
    assert "reference body weight (mouse 0.02 kg, rat 0.15 kg)" in sentence
    assert "<th>dose from reference body weight</th>" in section
    assert "† Dose per kg computed from the species&#39; reference body weight" in forest or (
        "† Dose per kg computed from the species' reference body weight" in forest
    )
