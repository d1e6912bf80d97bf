"""XML checks: ``is-xml``, ``contains-xml``.

What belongs here: checks that parse the output as XML. Model output is untrusted, so it is
parsed with ``defusedxml`` only (entity expansion such as the "billion laughs", external
entities and DTD retrieval are refused), never with ``xml.etree`` directly; ``defusedxml`` is
imported inside the check.

Rules a user could not guess from the name: ``is-xml`` needs the whole stripped output to be
one well-formed XML document; ``contains-xml`` finds a well-formed element anywhere in the
output (a ```xml fence first, then text around it is allowed). The value, optional, lists
elements that must be present as dotted paths from the root, as promptfoo's
``requiredElements``: ``{is-xml: {requiredElements: [order.id, order.items.item]}}`` or the
comma-separated string ``"order.id, order.items.item"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pytest_promptgate.assertions.registry import CheckContext, CheckOutcome, Validator, builtin
from pytest_promptgate.assertions.values import clean_text, fenced_blocks, kind, quote

_MAX_XML_STARTS = 50  # bounds the scan of a huge output full of '<'
_OPENING_TAG = re.compile(r"<([A-Za-z_][\w.\-]*(?::[\w.\-]+)?)[\s/>]")
_ELEMENT_PATH = re.compile(r"^[A-Za-z_][\w\-]*(?::[\w\-]+)?(\.[A-Za-z_][\w\-]*(?::[\w\-]+)?)*$")
_REQUIRED = "requiredElements"


def _required_elements(value: Any) -> list[str]:
    if value is None or value is True:
        return []
    if isinstance(value, dict):
        value = value.get(_REQUIRED)
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(item).strip() for item in value]


def _validate_xml_value(type_name: str) -> Validator:
    example = f"{{{type_name}: {{requiredElements: [order.id, order.items]}}}}"

    def validate(value: Any, suite_dir: Path) -> None:
        if value is None or value is True:
            return
        if isinstance(value, dict):
            if set(value) != {_REQUIRED}:
                keys = ", ".join(str(k) for k in value) or "none"
                raise ValueError(
                    f"{type_name} takes {_REQUIRED} only, found keys {keys}; write e.g. {example}"
                )
            elements = value[_REQUIRED]
            if not isinstance(elements, list) or not elements:
                raise ValueError(
                    f"{type_name} {_REQUIRED} is a non-empty list of element paths, got {kind(elements)}; write e.g. {example}"
                )
        elif not isinstance(value, str):
            raise ValueError(
                f"{type_name} takes nothing, element paths or {{{_REQUIRED}: [...]}}, got {kind(value)}; write e.g. {example}"
            )
        paths = _required_elements(value)
        if not paths:
            raise ValueError(f"{type_name} lists no element; write e.g. {example}")
        for path in paths:
            if not _ELEMENT_PATH.match(path):
                raise ValueError(
                    f"{type_name}: {path!r} is not an element path (tag names joined by '.', from the root); write e.g. {example}"
                )

    return validate


def parse_xml(text: str) -> tuple[Any, str | None]:
    """(root element, None), or (None, why it is not well-formed XML)."""
    from xml.etree.ElementTree import ParseError

    import defusedxml
    from defusedxml.ElementTree import fromstring

    try:
        return fromstring(text), None
    except ParseError as exc:
        return None, clean_text(str(exc), 120)
    except defusedxml.DefusedXmlException as exc:
        return (
            None,
            f"refused: {clean_text(type(exc).__name__, 60)} (entities and DTDs are not allowed)",
        )
    except (ValueError, RecursionError) as exc:
        return None, clean_text(str(exc), 120) or type(exc).__name__


def _local(tag: Any) -> str:
    text = tag if isinstance(tag, str) else ""
    return text.rsplit("}", 1)[-1]  # {namespace}name -> name


def _missing_elements(root: Any, paths: Sequence[str]) -> list[str]:
    missing = []
    for path in paths:
        parts = path.split(".")
        level = [root] if _local(root.tag) == parts[0] or root.tag == parts[0] else []
        for part in parts[1:]:
            level = [
                child
                for node in level
                for child in node
                if _local(child.tag) == part or child.tag == part
            ]
        if not level:
            missing.append(path)
    return missing


def _judge(root: Any, value: Any, what: str) -> CheckOutcome:
    paths = _required_elements(value)
    missing = _missing_elements(root, paths)
    if missing:
        shown = ", ".join(quote(m, 40) for m in missing[:5])
        return CheckOutcome(False, f"{what} lacks the elements {shown}")
    if paths:
        return CheckOutcome(True, f"{what} has the required elements")
    return CheckOutcome(True, f"{what} is well-formed XML (root {quote(_local(root.tag), 40)})")


@builtin("is-xml", validate=_validate_xml_value("is-xml"))
def check_is_xml(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    text = output.strip()
    if not text:
        return CheckOutcome(False, "output is empty, not XML")
    root, error = parse_xml(text)
    if root is None:
        return CheckOutcome(
            False,
            f"output is not XML ({error}): {quote(output)}; contains-xml allows text around it",
        )
    return _judge(root, value, "output")


def xml_elements_in_text(text: str) -> Iterator[Any]:
    """Well-formed elements found in free text: fenced blocks first, then from each opening
    tag to its last closing tag (a bounded number of starts, so a hostile output stays cheap)."""
    for block in fenced_blocks(text):
        root, _ = parse_xml(block.strip())
        if root is not None:
            yield root
    starts = 0
    position = 0
    while starts < _MAX_XML_STARTS:
        match = _OPENING_TAG.search(text, position)
        if match is None:
            return
        starts += 1
        name = match.group(1)
        end = text.rfind(f"</{name}>")
        candidates = []
        if end > match.start():
            candidates.append(text[match.start() : end + len(name) + 3])
        self_closing = text.find("/>", match.start())
        if self_closing != -1:
            candidates.append(text[match.start() : self_closing + 2])
        for candidate in candidates:
            root, _ = parse_xml(candidate)
            if root is not None:
                yield root
                position = match.start() + len(candidate)
                break
        else:
            position = match.start() + 1


@builtin("contains-xml", validate=_validate_xml_value("contains-xml"))
def check_contains_xml(output: str, value: Any, ctx: CheckContext) -> CheckOutcome:
    first_failure = None
    for root in xml_elements_in_text(output):
        outcome = _judge(root, value, "the XML in the output")
        if outcome.passed:
            return outcome
        first_failure = first_failure or outcome
    if first_failure is not None:
        return first_failure
    return CheckOutcome(False, f"output contains no well-formed XML element: {quote(output)}")
