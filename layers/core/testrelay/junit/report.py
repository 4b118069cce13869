"""JUnit XML reports → CaseResults, streaming: memory holds one test case, never the whole report.

The variety met in practice: a `<testsuites>` root or a bare `<testsuite>`, suites nested in suites,
`<testcase>` directly under `<testsuites>`, results as children or attributes (testrelay.junit.case_outcome),
cases without a name or with the title in `classname` (testrelay.junit.case_naming), and ids of the
test-management cases a test covers declared as `<property name="test_case_id" value="TC-1, TC-2"/>` inside
the `<testcase>` (pytest's `record_property`, JUnit 5's reporting entries, Surefire). Suite-level properties
describe the whole suite (environment, host), so they are not read as case ids.

An `<error>` or `<failure>` directly in a `<testsuite>` (TestReports.jl for an exception outside any test,
setup failures) is a result of its own: one ERROR case named "<suite> (suite-level error)", or a FAILED
"<suite> (suite-level failure)" when the suite has only `<failure>`s. The suite's cases keep the results
the runner gave them: those that ran did pass or fail, and they were streamed out before the suite's end
anyway. So is a suite that holds no case at all but counts errors or failures in its attributes (a TAP
script that died before its first test). Attribute counts of suites that do hold cases are not read:
runners disagree with their own elements too often (Nette Tester counts a <failure> as an error,
GoogleTest leaves its setup failures out).

Each JUnit case becomes a CaseResult with `case_id` 0 (it has no Testsigma id), its name as `name`, its
suite as `suite`, and the ids it declares (and, when the route reads trcli's conventions, its TestRail
ids: testrelay.junit.trcli_ids) as `ids`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO
from xml.parsers import expat

from testrelay.errors import InvalidPayload
from testrelay.junit import trcli_ids
from testrelay.junit.case_naming import case_name, case_suite, suite_name
from testrelay.junit.case_outcome import case_outcome, local_name, worst
from testrelay.junit.xml_events import xml_events
from testrelay.models.execution import CaseResult, duration_of, short_message
from testrelay.models.routes import JunitReading
from testrelay.sync.status_map import relay_status

ID_PROPERTIES = frozenset({"test_case_id", "test_case_ids", "testcase_id", "case_id", "case_ids"})
ROOTS = frozenset({"testsuites", "testsuite"})
_SUITE_OUTCOMES = {"error": "ERROR", "failure": "FAILED"}
_ID_SEPARATORS = re.compile(r"[\s,;]+")
# The only text read: a property's value may be its text. Output and stack traces are not results.
TEXT_OF = frozenset({"property"})


@dataclass
class _Suite:
    name: str | None
    """The nearest named suite: this one's name, or its parent's."""
    declared: str | None
    """ERROR or FAILED when its `errors` or `failures` attribute counts any."""
    outcomes: list[str] = field(default_factory=list)
    """Its own <error>/<failure> children, outside any test case."""
    results: int = 0
    """Results read inside it, nested suites' included."""


def _declared_outcome(suite: ET.Element) -> str | None:
    for attribute, outcome in (("errors", "ERROR"), ("failures", "FAILED")):
        try:
            if float(suite.get(attribute) or 0) > 0:
                return outcome
        except ValueError:
            continue
    return None


def _properties(case: ET.Element) -> Iterator[tuple[str, str]]:
    for properties in case:
        if local_name(properties.tag) != "properties":
            continue
        for prop in properties:
            if local_name(prop.tag) == "property":
                value = prop.get("value") if prop.get("value") is not None else prop.text
                yield (prop.get("name") or "").strip().lower(), value or ""


def _ids(case: ET.Element, name: str, reading: JunitReading) -> tuple[str, ...]:
    properties = list(_properties(case))
    ids = [token for key, value in properties if key in ID_PROPERTIES for token in _ID_SEPARATORS.split(value)]
    if reading.trcli_ids:
        ids += trcli_ids.ids_in_name(name, reading.trcli_id_format)
        ids += trcli_ids.ids_in_property(
            (value for key, value in properties if key == trcli_ids.PROPERTY), reading.trcli_id_format
        )
    return tuple(dict.fromkeys(token for token in ids if token))


def _case_result(case: ET.Element, suite: str | None, reading: JunitReading) -> CaseResult:
    name = case_name(case, suite)
    result = case_outcome(case)
    return CaseResult(
        case_id=0,
        name=name,
        result=result,
        status=relay_status(result),
        suite=case_suite(case, suite),
        ids=_ids(case, name, reading) or None,
        message=_failure_message(case),
        duration_ms=duration_of(case.get("time"), 1000),
    )


def _failure_message(case: ET.Element) -> str | None:
    """The `message` (else `type`) of the case's first <failure> or <error>: what CI annotations show."""
    for child in case:
        if local_name(child.tag) in _SUITE_OUTCOMES:
            return short_message(child.get("message") or child.get("type"))
    return None


def _suite_result(suite: _Suite) -> CaseResult:
    result = worst(suite.outcomes)
    kind = "error" if result == "ERROR" else "failure"
    name = f"{suite.name or 'unnamed suite'} (suite-level {kind})"
    return CaseResult(case_id=0, name=name, result=result, status=relay_status(result), suite=suite.name)


def parse_report(stream: IO[bytes], reading: JunitReading | None = None) -> Iterator[CaseResult]:
    """Every test case of the report, in document order. Raises InvalidPayload (naming line and column
    for XML errors) on a malformed report, an encoding that cannot be read, a root other than
    testsuites/testsuite, or no test case."""
    reading = reading or JunitReading()
    suites: list[_Suite] = []
    stack: list[ET.Element] = []
    in_case = 0
    count = 0
    try:
        for event, element in xml_events(stream, TEXT_OF):
            tag = local_name(element.tag)
            if event == "start":
                if not stack and tag not in ROOTS:
                    raise InvalidPayload(f"JUnit report root is <{tag}>, expected <testsuites> or <testsuite>")
                if tag == "testsuite" and not in_case:
                    name = suite_name(element) or (suites[-1].name if suites else None)
                    suites.append(_Suite(name, _declared_outcome(element)))
                if in_case or tag == "testcase":
                    in_case += 1
                stack.append(element)
                continue
            stack.pop()
            if in_case:
                in_case -= 1
                if in_case:
                    # A child of a case: the case reads it when it ends.
                    continue
                count += 1
                if suites:
                    suites[-1].results += 1
                yield _case_result(element, suites[-1].name if suites else None, reading)
            elif tag == "testsuite":
                suite = suites.pop()
                if not suite.outcomes and not suite.results and suite.declared:
                    # No case at all, yet errors counted: TAP::Formatter::JUnit's script that died
                    # before its first test says so only in the attribute (and <system-err>).
                    suite.outcomes.append(suite.declared)
                if suite.outcomes:
                    count += 1
                    suite.results += 1
                    yield _suite_result(suite)
                if suites:
                    suites[-1].results += suite.results
            elif tag in _SUITE_OUTCOMES and suites and stack and local_name(stack[-1].tag) == "testsuite":
                suites[-1].outcomes.append(_SUITE_OUTCOMES[tag])
            # Done with this element: drop it from its parent so the tree never grows.
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
