"""The documentation site's spec reference is complete: every key of an analysis spec has
a description, and no description names a key the spec does not have."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT


def _extension():
    path = ROOT / "docs" / "_ext" / "evmeta_spec.py"
    spec = importlib.util.spec_from_file_location("evmeta_spec", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_spec_key_is_described():
    missing = _extension().missing_descriptions()
    assert not missing, f"describe these keys in docs/reference/spec_keys.toml: {missing}"


def test_no_description_of_a_key_that_does_not_exist():
    unknown = _extension().unknown_descriptions()
    assert not unknown, f"docs/reference/spec_keys.toml describes keys the spec lacks: {unknown}"


def test_the_reference_lists_defaults_from_the_code():
    sections = _extension().spec_sections()
    rows = {key: default for key, _, default in sections["frequentist"]}
    assert rows["method"] == '"REML"'
    assert rows["test"] == '"knha"'
    assert ("name", "text", "required") in sections["analysis"]


def test_every_docs_page_is_in_the_site():
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    pages = [p for p in (ROOT / "docs").rglob("*.md") if "_build" not in p.parts and p.name != "index.md"]
    for page in pages:
        entry = str(page.relative_to(ROOT / "docs").with_suffix(""))
        assert entry in index, f"docs/{entry}.md is not in the table of contents of docs/index.md"


def test_the_api_reference_is_current():
    """docs/api.md is what docs/_ext/api_page.py writes from the namespaces' __all__."""
    path = ROOT / "docs" / "_ext" / "api_page.py"
    spec = importlib.util.spec_from_file_location("api_page", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    current = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert current == module.page(), "docs/api.md is stale: run python docs/_ext/api_page.py"
