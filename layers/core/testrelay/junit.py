"""JUnit XML reports → CaseResults, streaming: memory holds one test case, never the whole report.

The variety met in practice: a `<testsuites>` root or a bare `<testsuite>`, suites nested in suites,
`<failure>` and `<error>` (a failed assertion vs an unexpected exception), `<skipped>`, and ids of the
test-management cases a test covers declared as `<property name="test_case_id" value="TC-1, TC-2"/>`
inside the `<testcase>` (pytest's `record_property`, JUnit 5's reporting entries, Surefire). Suite-level
properties describe the whole suite (environment, host), so they are not read as case ids.

Results: PASSED, FAILED (`<failure>`), ERROR (`<error>`), SKIPPED (`<skipped>`); where a case has
several of these children the worst wins. Each JUnit case becomes a CaseResult with `case_id` 0 (it
has no Testsigma id), its `name` attribute as `name`, its `classname` (or the enclosing suite's name)
as `suite`, and the declared ids as `ids`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import IO
from xml.parsers import expat

from testrelay.errors import InvalidPayload
from testrelay.models.execution import CaseResult
from testrelay.sync.status_map import relay_status

ID_PROPERTIES = frozenset({"test_case_id", "test_case_ids", "testcase_id", "case_id", "case_ids"})
ROOTS = frozenset({"testsuites", "testsuite"})
# Worst first: a case with both an <error> and a <failure> (some runners write both) is an error.
_OUTCOMES = {"error": "ERROR", "failure": "FAILED", "skipped": "SKIPPED"}
_SEVERITY = ("ERROR", "FAILED", "SKIPPED", "PASSED")
_ID_SEPARATORS = re.compile(r"[\s,;]+")
CHUNK = 64 * 1024


def _local(tag: str) -> str:
    """The tag without a namespace: a few generators put the report in one."""
    return tag.rsplit("}", 1)[-1]


def _declared_ids(case: ET.Element) -> tuple[str, ...]:
    ids: list[str] = []
    for properties in case:
        if _local(properties.tag) != "properties":
            continue
        for prop in properties:
            if _local(prop.tag) == "property" and (prop.get("name") or "").strip().lower() in ID_PROPERTIES:
                value = prop.get("value") if prop.get("value") is not None else prop.text
                ids += [token for token in _ID_SEPARATORS.split(value or "") if token]
    return tuple(dict.fromkeys(ids))


def _case_result(case: ET.Element, suite: str | None) -> CaseResult:
    name = (case.get("name") or "").strip()
    if not name:
        raise InvalidPayload("JUnit report has a <testcase> without a name")
    found = [_OUTCOMES[_local(child.tag)] for child in case if _local(child.tag) in _OUTCOMES]
    result = min(found or ["PASSED"], key=_SEVERITY.index)
    ids = _declared_ids(case)
    return CaseResult(
        case_id=0,
        name=name,
        result=result,
        status=relay_status(result),
        suite=(case.get("classname") or "").strip() or suite,
        ids=ids or None,
    )


def _refuse_doctype(*_: object) -> None:
    raise InvalidPayload("JUnit report declares a DOCTYPE: reports never need one, and entities are not expanded")


def _events(stream: IO[bytes]) -> Iterator[tuple[str, ET.Element]]:
    """("start" | "end", element) as the stream is read, like ElementTree.iterparse, on expat directly
    so that a DOCTYPE (where entity bombs and external entities live) is refused before it is read."""
    parser = expat.ParserCreate(namespace_separator="}")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    builder = ET.TreeBuilder()
    pending: list[tuple[str, ET.Element]] = []
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_doctype
    parser.StartElementHandler = lambda tag, attrs: pending.append(("start", builder.start(tag, attrs)))
    parser.EndElementHandler = lambda tag: pending.append(("end", builder.end(tag)))
    parser.CharacterDataHandler = builder.data
    while chunk := stream.read(CHUNK):
        parser.Parse(chunk, False)
        yield from pending
        pending.clear()
    parser.Parse(b"", True)
    yield from pending


def parse_report(stream: IO[bytes]) -> Iterator[CaseResult]:
    """Every test case of the report, in document order. Raises InvalidPayload (naming line and column
    for XML errors) on a malformed report, a root other than testsuites/testsuite, or no test case."""
    suites: list[str | None] = []
    stack: list[ET.Element] = []
    count = 0
    try:
        for event, element in _events(stream):
            tag = _local(element.tag)
            if event == "start":
                if not stack and tag not in ROOTS:
                    raise InvalidPayload(f"JUnit report root is <{tag}>, expected <testsuites> or <testsuite>")
                if tag == "testsuite":
                    suites.append((element.get("name") or "").strip() or None)
                stack.append(element)
                continue
            stack.pop()
            if tag == "testcase":
                count += 1
                yield _case_result(element, next((s for s in reversed(suites) if s), None))
            elif tag == "testsuite":
                suites.pop()
            else:
                continue
            # Done with this case or suite: drop it from its parent so the tree never grows.
            if stack:
                stack[-1].remove(element)
            element.clear()
    except expat.ExpatError as exc:
        reason = expat.ErrorString(exc.code) if exc.code else str(exc)
        raise InvalidPayload(
            f"JUnit report is not well-formed XML: {reason} at line {exc.lineno}, column {exc.offset}"
        ) from exc
    if count == 0:
        raise InvalidPayload("JUnit report holds no test case")
