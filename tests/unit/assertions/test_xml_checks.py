"""XML checks (assertions/xml.py): is-xml, contains-xml, parsed with defusedxml only."""

from __future__ import annotations

import pytest
from helpers.suite_expectations import loads, run_check, suite_error

ORDER = "<order><id>A1</id><items><item sku='1'/><item sku='2'/></items></order>"
BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>'
)
EXTERNAL = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'


def test_is_xml_passes_on_a_document_and_fails_on_text() -> None:
    assert run_check("is-xml", None, f'<?xml version="1.0"?>\n{ORDER}\n').passed
    result = run_check("is-xml", None, "Here is the XML: " + ORDER)
    assert not result.passed and "not XML" in result.reason and "contains-xml" in result.reason
    assert not run_check("is-xml", None, "<order><id>A1</order>").passed  # not well-formed
    assert run_check("is-xml", None, "just text", negate=True).passed
    assert not run_check("is-xml", None, ORDER, negate=True).passed


def test_required_elements_are_dotted_paths_from_the_root() -> None:
    paths = {"requiredElements": ["order.id", "order.items.item"]}
    assert run_check("is-xml", paths, ORDER).passed
    result = run_check("is-xml", "order.id, order.total", ORDER)
    assert not result.passed and "'order.total'" in result.reason
    assert not run_check("is-xml", "items.item", ORDER).passed  # the root comes first


def test_entities_and_external_references_are_refused() -> None:
    for hostile in (BOMB, EXTERNAL):
        result = run_check("is-xml", None, hostile)
        assert not result.passed and "refused" in result.reason
        assert "root:" not in result.reason  # nothing was read from the file system
        assert not run_check("contains-xml", None, f"text {hostile} text").passed


def test_contains_xml_finds_an_element_in_text_or_a_fence() -> None:
    assert run_check("contains-xml", None, f"Sure! {ORDER} Anything else?").passed
    fenced = f"Here you go:\n```xml\n{ORDER}\n```\n"
    assert run_check("contains-xml", "order.items.item", fenced).passed
    missing = run_check("contains-xml", "order.total", f"see {ORDER}")
    assert not missing.passed and "lacks" in missing.reason
    none = run_check("contains-xml", None, "a < b and c > d")
    assert not none.passed and "no well-formed XML" in none.reason
    assert run_check("contains-xml", None, "a < b", negate=True).passed


def test_contains_xml_stays_cheap_on_a_hostile_output() -> None:
    hostile = "<a>" * 20_000 + "x"
    assert not run_check("contains-xml", None, hostile).passed


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("- is-xml: {requiredElements: []}", "non-empty list"),
        ("- is-xml: {required: [a]}", "takes requiredElements only"),
        ("- contains-xml: 'order..id'", "not an element path"),
        ("- contains-xml: 3", "takes nothing, element paths"),
    ],
)
def test_malformed_xml_values_fail_at_load(tmp_path, line, message) -> None:
    error, line_no = suite_error(tmp_path, line)
    assert f"bad.promptgate.yaml:{line_no}:" in error and message in error


def test_xml_values_that_load(tmp_path) -> None:
    expectations = loads(
        tmp_path, "- is-xml", "- not-contains-xml: order.id", "- is-xml: {requiredElements: [a.b]}"
    )
    assert [e.name for e in expectations] == ["is-xml", "not-contains-xml", "is-xml"]
