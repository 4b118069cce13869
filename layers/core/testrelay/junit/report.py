"""JUnit XML reports → JunitCases, streaming: memory holds one test case's attributes, never the whole report.

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

Each JUnit case becomes a JunitCase (testrelay.junit.case; `case_id` 0: it has no Testsigma id), its name as `name`, its
suite as `suite`, and the ids it declares (and, when the route reads trcli's conventions, its TestRail
ids: testrelay.junit.trcli_ids) as `ids`, the `message` (else `type`) of its first `<failure>` or `<error>` as
`message` and its `time` as `duration_ms`.

Speed: the reader is expat's handlers themselves (no element tree, no event list): per element it does
about what a bare iterparse loop does, and per case only what the result needs (children are looked at
only for their names; a property's text is collected only when the property has no `value`), and a
case is a tuple, not a model: a pydantic model per case cost a third of the parse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO
from xml.parsers import expat

from testrelay.errors import InvalidPayload
from testrelay.junit import trcli_ids
from testrelay.junit.case import JunitCase
from testrelay.junit.case_naming import suite_name, unnamed
from testrelay.junit.case_outcome import CHILD_OUTCOMES, RANK, SEVERITY, case_outcome, worst
from testrelay.junit.xml_events import XmlStream
from testrelay.models.execution import duration_of, short_message
from testrelay.models.routes import JunitReading
from testrelay.sync.status_map import relay_status

ID_PROPERTIES = frozenset({"test_case_id", "test_case_ids", "testcase_id", "case_id", "case_ids"})
ROOTS = frozenset({"testsuites", "testsuite"})
_SUITE_OUTCOMES = {"error": "ERROR", "failure": "FAILED"}
_MAX_MS = 2**53  # duration_of's bound: beyond it a float no longer holds every millisecond


@dataclass
class _Suite:
    name: str | None
    """The nearest named suite: this one's name, or its parent's."""
    declared: str | None
    """ERROR or FAILED when its `errors` or `failures` attribute counts any."""
    read_before: int
    """Results read before it started: those read inside it (nested suites' included) are the rest."""
    outcomes: list[str] = field(default_factory=list)
    """Its own <error>/<failure> children, outside any test case."""


def _declared_outcome(suite: Mapping[str, str]) -> str | None:
    for attribute, outcome in (("errors", "ERROR"), ("failures", "FAILED")):
        try:
            if float(suite.get(attribute) or 0) > 0:
                return outcome
        except ValueError:
            continue
    return None


def _declared_ids(value: str) -> list[str]:
    """The ids in a `test_case_id` property's value: separated by whitespace, commas or semicolons."""
    return value.replace(",", " ").replace(";", " ").split()


def _ids(declared: Sequence[str], name: str, test_ids: Sequence[str], reading: JunitReading) -> tuple[str, ...] | None:
    """A case's ids: those its properties declare, then (when the route reads trcli's conventions) the
    TestRail ids in its name and its `test_id` properties; each once, in that order."""
    ids = [*declared]
    if reading.trcli_ids:
        ids += trcli_ids.ids_in_name(name, reading.trcli_id_format)
        ids += trcli_ids.ids_in_property(test_ids, reading.trcli_id_format)
    return tuple(dict.fromkeys(token for token in ids if token)) or None


_STATUS = {result: relay_status(result) for result in SEVERITY}
# A JunitCase made from its fields' tuple as it is, without NamedTuple's `__new__` (a Python call per case).
_case = tuple.__new__


def _suite_result(suite: _Suite) -> JunitCase:
    result = worst(suite.outcomes)
    kind = "error" if result == "ERROR" else "failure"
    name = f"{suite.name or 'unnamed suite'} (suite-level {kind})"
    return JunitCase(name, result, relay_status(result), suite.name)


def _attach_reader(parser: expat.XMLParserType, reading: JunitReading, results: list[JunitCase]) -> Callable[[], int]:
    """Sets expat's handlers to read the report's results into `results` (the caller takes them after
    each chunk); returns how many were read so far.

    Inside a test case only depth is tracked: its direct children are read for their outcome (and
    `<properties>`), the `<property>` elements of those for their name and value; anything deeper is
    passed over. Outside cases a stack of local names finds a suite's own <error>/<failure>. The
    handlers are closures over local state, not methods: this runs once per element of reports of
    hundreds of thousands of cases, and attribute look-ups would be most of its cost."""
    suites: list[_Suite] = []
    stack: list[str] = []
    count = 0
    suite_of: str | None = None  # the nearest named suite's name
    depth = 0  # inside the current test case (1: the <testcase> itself; 0: outside any)
    case: Mapping[str, str] = {}
    # The current case's worst child outcome, and the ids its properties give (fresh lists only for a
    # case that has any): the values of its id properties split, its trcli `test_id` properties' values.
    child = "PASSED"
    declared: Sequence[str] = ()
    test_ids: Sequence[str] = ()
    # The `message` (else `type`) of its first <failure> or <error>: what CI annotations show.
    failure: Mapping[str, str] | None = None
    in_properties = False
    open_property: tuple[str, str | None] | None = None
    text: list[str] = []
    trcli = reading.trcli_ids

    def start(tag: str, attributes: dict[str, str]) -> None:
        nonlocal depth, case, child, declared, test_ids, failure, in_properties, open_property, text, suite_of
        if depth:
            depth += 1
            if depth == 2:
                local = tag.rpartition("}")[2] if "}" in tag else tag
                outcome = CHILD_OUTCOMES.get(local)
                if outcome is not None:
                    if RANK[outcome] < RANK[child]:
                        child = outcome
                    if failure is None and local in _SUITE_OUTCOMES:
                        failure = attributes
                in_properties = local == "properties"
            elif depth == 3 and in_properties and tag.rpartition("}")[2] == "property":
                value = attributes.get("value")
                open_property = ((attributes.get("name") or "").strip().lower(), value)
                if value is None:
                    # Its value is its text (up to its first child, as ElementTree reads it).
                    text = []
                    parser.CharacterDataHandler = text.append
            elif open_property is not None:
                parser.CharacterDataHandler = None
            return
        local = tag.rpartition("}")[2] if "}" in tag else tag
        if local == "testcase" and stack:
            depth = 1
            case = attributes
            child = "PASSED"
            declared = test_ids = ()
            failure = None
            return
        if not stack and local not in ROOTS:
            raise InvalidPayload(f"JUnit report root is <{local}>, expected <testsuites> or <testsuite>")
        if local == "testsuite":
            name = suite_name(attributes) or (suites[-1].name if suites else None)
            suites.append(_Suite(name, _declared_outcome(attributes), count))
            suite_of = name
        stack.append(local)

    def end(tag: str) -> None:
        nonlocal depth, count, open_property, declared, test_ids, suite_of
        if depth:
            depth -= 1
            if not depth:
                # Once per case of reports of hundreds of thousands: written for speed, a line per field.
                get = case.get
                name = get("name")
                name = name.strip() if name else ""
                classname = get("classname")
                case_suite = suite_of
                if classname:
                    classname = classname.strip()
                    # The classname names the suite unless it is the test's title: the name, or its last words.
                    if (
                        classname
                        and name != classname
                        and not (name.endswith(classname) and name[-len(classname) - 1] == " ")
                    ):
                        case_suite = classname
                if not name:
                    name = unnamed(classname or suite_of)
                result = case_outcome(case, child) if "status" in case or "result" in case else child
                seconds = get("time")
                if seconds is None:
                    duration = None
                else:
                    # float() reads nearly every `time` as it is (it strips whitespace itself); duration_of the rest.
                    try:
                        ms = float(seconds) * 1000
                    except ValueError:
                        duration = duration_of(seconds, 1000)
                    else:
                        duration = int(ms) if 0 <= ms <= _MAX_MS else None
                if trcli:
                    ids = _ids(declared, name, test_ids, reading)
                else:
                    ids = tuple(dict.fromkeys(declared)) if declared else None
                count += 1
                message = None if failure is None else short_message(failure.get("message") or failure.get("type"))
                results.append(_case(JunitCase, (name, result, _STATUS[result], case_suite, ids, message, duration)))
            elif depth == 2 and open_property is not None:
                key, value = open_property
                value = ("".join(text) if value is None else value) or ""
                if key in ID_PROPERTIES:
                    declared = [*declared, *_declared_ids(value)]
                elif key == trcli_ids.PROPERTY:
                    test_ids = [*test_ids, value]
                open_property = None
                parser.CharacterDataHandler = None
            return
        local = stack.pop()
        if local == "testsuite":
            ended = suites.pop()
            suite_of = suites[-1].name if suites else None
            if not ended.outcomes and count == ended.read_before and ended.declared:
                # No case at all, yet errors counted: TAP::Formatter::JUnit's script that died
                # before its first test says so only in the attribute (and <system-err>).
                ended.outcomes.append(ended.declared)
            if ended.outcomes:
                count += 1
                results.append(_suite_result(ended))
        elif local in _SUITE_OUTCOMES and suites and stack and stack[-1] == "testsuite":
            suites[-1].outcomes.append(_SUITE_OUTCOMES[local])

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    return lambda: count


def parse_report(stream: IO[bytes], reading: JunitReading | None = None) -> Iterator[JunitCase]:
    """Every test case of the report, in document order. Raises InvalidPayload (naming line and column
    for XML errors) on a malformed report, an encoding that cannot be read, a root other than
    testsuites/testsuite, or no test case."""
    xml = XmlStream(stream)
    results: list[JunitCase] = []
    read = _attach_reader(xml.parser, reading or JunitReading(), results)
    try:
        for _ in xml.chunks():
            yield from results
            results.clear()
    except expat.ExpatError as exc:
        reason = expat.ErrorString(exc.code) if exc.code else str(exc)
        raise InvalidPayload(
            f"JUnit report is not well-formed XML: {reason} at line {exc.lineno}, column {exc.offset}"
        ) from exc
    if read() == 0:
        raise InvalidPayload("JUnit report holds no test case")
