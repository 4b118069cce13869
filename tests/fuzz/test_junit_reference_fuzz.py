"""The streaming JUnit reader against a plain reference reader, on generated reports.

The reader (testrelay.junit.report) is written for speed: expat's handlers, state in closures, a worst
outcome kept instead of a list, ids split as their property ends, results made without validation. The
reference below reads the same rules the slow, obvious way (a whole ElementTree, a walk, validated
CaseResults) so that any shortcut that changes a result shows up here, with the report that shows it.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from testrelay.junit import parse_report, trcli_ids
from testrelay.models.execution import CaseResult, duration_of, short_message
from testrelay.models.routes import JunitReading
from testrelay.sync.status_map import relay_status

SEVERITY = ["ERROR", "FAILED", "SKIPPED", "PASSED"]
CHILDREN = {"error": "ERROR", "failure": "FAILED", "skipped": "SKIPPED", "skip": "SKIPPED"}
STATUS = {"notrun": "SKIPPED", "not_run": "SKIPPED", "disabled": "SKIPPED", "skipped": "SKIPPED", "skip": "SKIPPED"}
STATUS |= {"ignored": "SKIPPED", "pending": "SKIPPED", "failed": "FAILED", "failure": "FAILED", "fail": "FAILED"}
STATUS |= {"error": "ERROR", "errored": "ERROR"}
RESULT = {"suppressed": "SKIPPED", "skipped": "SKIPPED", "skip": "SKIPPED"}
ID_PROPERTIES = {"test_case_id", "test_case_ids", "testcase_id", "case_id", "case_ids"}
NS = "urn:example:junit"


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _worst(outcomes: list[str]) -> str:
    return min(outcomes, key=SEVERITY.index, default="PASSED")


def _suite_name(attributes: dict[str, str]) -> str | None:
    name = (attributes.get("name") or "").strip()
    if name == "Root Suite":
        return (attributes.get("file") or "").strip() or None
    return name or None


def _reference_case(case: ET.Element, suite: str | None, reading: JunitReading) -> CaseResult:
    name = (case.get("name") or "").strip()
    classname = (case.get("classname") or "").strip()
    case_suite = suite if not classname or name == classname or name.endswith(" " + classname) else classname
    if not name:
        named_after = classname or suite
        name = f"{named_after} (test case without a name)" if named_after else "(test case without a name)"
    outcomes = [CHILDREN[_local(child.tag)] for child in case if _local(child.tag) in CHILDREN]
    for attribute, table in (("status", STATUS), ("result", RESULT)):
        value = (case.get(attribute) or "").strip().lower()
        if value in table:
            outcomes.append(table[value])
    result = _worst(outcomes)
    properties = [
        ((prop.get("name") or "").strip().lower(), prop.get("value") if "value" in prop.attrib else prop.text or "")
        for group in case
        if _local(group.tag) == "properties"
        for prop in group
        if _local(prop.tag) == "property"
    ]
    ids = [token for key, value in properties if key in ID_PROPERTIES for token in re.split(r"[\s,;]+", value or "")]
    if reading.trcli_ids:
        ids += trcli_ids.ids_in_name(name, reading.trcli_id_format)
        test_ids = [value or "" for key, value in properties if key == trcli_ids.PROPERTY]
        ids += trcli_ids.ids_in_property(test_ids, reading.trcli_id_format)
    failures = [child for child in case if _local(child.tag) in ("error", "failure")]
    message = short_message(failures[0].get("message") or failures[0].get("type")) if failures else None
    return CaseResult(
        case_id=0,
        name=name,
        result=result,
        status=relay_status(result),
        suite=case_suite,
        ids=tuple(dict.fromkeys(token for token in ids if token)) or None,
        message=message,
        duration_ms=duration_of(case.get("time"), 1000),
    )


def _declared(attributes: dict[str, str]) -> str | None:
    for attribute, outcome in (("errors", "ERROR"), ("failures", "FAILED")):
        try:
            if float(attributes.get(attribute) or 0) > 0:
                return outcome
        except ValueError:
            continue
    return None


def reference(report: bytes, reading: JunitReading) -> list[CaseResult]:
    """Every result, read from the whole tree: cases anywhere under the root (outside other cases), and
    for a suite its own <error>/<failure> children, else its error counts when it holds no case."""
    results: list[CaseResult] = []

    def walk(element: ET.Element, suite: str | None) -> None:
        for child in element:
            tag = _local(child.tag)
            if tag == "testcase":
                results.append(_reference_case(child, suite, reading))
            elif tag == "testsuite":
                read_suite(child, suite)
            else:
                walk(child, suite)

    def read_suite(element: ET.Element, parent: str | None) -> None:
        name = _suite_name(element.attrib) or parent
        before = len(results)
        walk(element, name)
        own = [CHILDREN[_local(child.tag)] for child in element if _local(child.tag) in ("error", "failure")]
        declared = _declared(element.attrib)
        if not own and len(results) == before and declared:
            own = [declared]
        if own:
            result = _worst(own)
            kind = "error" if result == "ERROR" else "failure"
            label = f"{name or 'unnamed suite'} (suite-level {kind})"
            results.append(CaseResult(case_id=0, name=label, result=result, status=relay_status(result), suite=name))

    root = ET.fromstring(report)  # noqa: S314 (the test's own generated XML)
    if _local(root.tag) == "testsuite":
        read_suite(root, None)
    else:
        walk(root, None)
    return results


WORDS = ["", " ", "a", "Root Suite", "C12", "[C3] x", "test_C45_y", "c7()", "TC-1", "com.acme.FooTest"]
SPACES = ["", " ", "\t", "\n", "\u00a0", "\u2003", "\u3000", ",", ";", ", "]
TIMES = ["", "0.5", " 1.5 ", "1,234.5", "nan", "-1", "-0", "1e20", "inf", "1_0", "abc", "\u20031.5", "\u0663.\u0665"]
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=8)
WORD = st.sampled_from(WORDS) | TEXT
SPACED = st.builds(lambda a, s, b: a + s + b, WORD, st.sampled_from(SPACES), WORD)
# Several ids in one value, set off by any of the separators runners use (and some they should not).
ID_LIST = st.lists(st.tuples(st.sampled_from(SPACES), WORD), min_size=1, max_size=4).map(
    lambda parts: "".join(space + word for space, word in parts)
)
OUTCOME_VALUES = st.sampled_from([*STATUS, *RESULT, "run", " Disabled ", "PASSED"])


def _tag(name: str, namespaced: bool) -> str:
    return f"{{{NS}}}{name}" if namespaced else name


@st.composite
def properties(draw: st.DrawFn, namespaced: bool) -> ET.Element:
    group = ET.Element(_tag("properties", namespaced))
    for _ in range(draw(st.integers(0, 3))):
        keys = ["test_case_id", "test_case_id", " Test_Case_IDs ", "case_id", "test_id", "test_id", "owner", ""]
        prop = ET.SubElement(group, _tag(draw(st.sampled_from(["property", "property", "property", "x"])), namespaced))
        prop.set("name", draw(st.sampled_from(keys)))
        value = draw(ID_LIST)
        if draw(st.booleans()):
            prop.set("value", value)
        else:
            prop.text = value
            if draw(st.booleans()):
                ET.SubElement(prop, "inner").tail = "after the first child"
    return group


@st.composite
def cases(draw: st.DrawFn, namespaced: bool) -> ET.Element:
    case = ET.Element(_tag("testcase", namespaced))
    for attribute, values in (("name", SPACED), ("classname", WORD), ("time", st.sampled_from(TIMES) | TEXT)):
        if draw(st.integers(0, 4)):
            case.set(attribute, draw(values))
    if draw(st.booleans()) and case.get("name") and draw(st.booleans()):
        case.set("classname", case.get("name", "").rpartition(" ")[2])  # the title's last words
    for attribute in ("status", "result"):
        if not draw(st.integers(0, 4)):
            case.set(attribute, draw(OUTCOME_VALUES))
    kinds = ["failure", "error", "skipped", "skip", "flakyFailure", "rerunFailure", "system-out"]
    kinds += ["properties"] * 3
    for kind in draw(st.lists(st.sampled_from(kinds), max_size=4)):
        if kind == "properties":
            case.append(draw(properties(namespaced)))
            continue
        child = ET.SubElement(case, _tag(kind, namespaced))
        for attribute in ("message", "type"):
            if draw(st.booleans()):
                child.set(attribute, draw(SPACED | st.just("x" * 1200)))
        child.text = draw(TEXT)
        if draw(st.integers(0, 5)) == 0:
            ET.SubElement(child, _tag("failure", namespaced))  # deeper than a case's children: not a result
    return case


def suites(namespaced: bool) -> st.SearchStrategy[ET.Element]:
    def suite(children: list[ET.Element], name: str | None, counts: dict[str, str], own: list[str]) -> ET.Element:
        element = ET.Element(_tag("testsuite", namespaced), counts)
        if name is not None:
            element.set("name", name)
            if name == "Root Suite":
                element.set("file", "cypress/e2e/cart.cy.ts")
        element.extend(children)
        for kind in own:
            ET.SubElement(element, _tag(kind, namespaced), {"message": "outside any test"})
        return element

    def build(children: st.SearchStrategy[list[ET.Element]]) -> st.SearchStrategy[ET.Element]:
        return st.builds(
            suite,
            children,
            st.none() | WORD,
            st.dictionaries(st.sampled_from(["errors", "failures", "tests"]), st.sampled_from(["0", "1", "x", ""])),
            st.lists(st.sampled_from(["error", "failure", "system-err"]), max_size=2),
        )

    leaf = build(st.lists(cases(namespaced), max_size=4))
    return st.recursive(leaf, lambda inner: build(st.lists(inner | cases(namespaced), max_size=3)), max_leaves=6)


@st.composite
def reports(draw: st.DrawFn) -> bytes:
    namespaced = draw(st.integers(0, 5)) == 0
    if draw(st.booleans()):
        root = draw(suites(namespaced))
    else:
        root = ET.Element(_tag("testsuites", namespaced))
        root.extend(draw(st.lists(suites(namespaced) | cases(namespaced), min_size=1, max_size=3)))
    return bytes(ET.tostring(root, encoding="utf-8"))


class _Chunked:
    """A stream handing out `size` bytes per read: state must not hang on chunk edges."""

    def __init__(self, data: bytes, size: int) -> None:
        self._data, self._size = data, size

    def read(self, size: int = -1) -> bytes:
        chunk, self._data = self._data[: self._size], self._data[self._size :]
        return chunk


@settings(max_examples=200, deadline=None, derandomize=True)
@given(report=reports(), trcli=st.booleans(), chunk=st.sampled_from([1, 7, 4096, 1 << 20]))
def test_the_streaming_reader_reads_what_the_reference_reads(report: bytes, trcli: bool, chunk: int) -> None:
    # Given a generated JUnit report (nested suites, unnamed cases, titles in classname, attribute outcomes,
    # ids in properties and names, odd times, namespaces), read in chunks of some size
    reading = JunitReading(trcli_ids=trcli)
    expected = reference(report, reading)
    if not expected:
        return  # a report without any case is refused; the fuzz tests cover refusals
    # When the streaming reader reads it
    results = list(parse_report(_Chunked(report, chunk), reading))  # type: ignore[arg-type]
    # Then it gives exactly the reference's results, in order, field for field, and stores them as the
    # reference's validated models dump
    assert [r.case_result().model_dump() for r in results] == [r.model_dump() for r in expected]
    assert [r.stored() for r in results] == [r.stored() for r in expected]
