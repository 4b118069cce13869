"""JUnit reports as they come from real runners (pytest, Maven Surefire, PHPUnit), parsed into results
and matched to test-management cases by the same rules as Testsigma results."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator

import pytest

from testrelay.errors import InvalidPayload
from testrelay.junit import parse_report
from testrelay.models.execution import CaseResult, CaseStatus
from testrelay.sync.matching import CaseCatalog, CaseMatcher, CaseMatching, TargetCase
from testrelay.sync.status_map import ResultMapping
from tests.support import EVENTS


def _parse(name: str) -> list[CaseResult]:
    with (EVENTS / "junit" / name).open("rb") as stream:
        return list(parse_report(stream))


def _outcomes(results: list[CaseResult]) -> list[tuple[str, str, CaseStatus]]:
    return [(r.name, r.result, r.status) for r in results]


def test_a_pytest_report_under_testsuites_keeps_failure_error_and_skipped_apart() -> None:
    # Given pytest's report: a <testsuites> root, a failure, an error in a fixture and a skip
    results = _parse("pytest.xml")
    # Then each case reads as the runner reported it; an error fails the case by default
    assert _outcomes(results) == [
        ("test_guest_checkout_with_saved_card", "PASSED", CaseStatus.PASSED),
        ("test_discount_code[TC-102]", "FAILED", CaseStatus.FAILED),
        ("test_card_payments", "ERROR", CaseStatus.FAILED),
        ("test_bank_transfer", "SKIPPED", CaseStatus.SKIPPED),
    ]
    # And the ids a case declares in its properties are kept, several per case
    assert [r.ids for r in results] == [("TC-101",), None, ("TC-103", "TC-104"), ("TC-105",)]
    assert {r.suite for r in results} == {"tests.test_checkout", "tests.test_payment"}
    assert {r.case_id for r in results} == {0}


def test_a_bare_surefire_testsuite_ignores_suite_properties_and_flaky_reruns() -> None:
    # Given Maven Surefire's report: a bare <testsuite> whose own properties are the JVM's (and an id)
    results = _parse("surefire.xml")
    # Then a flaky failure that passed on rerun is a pass, and suite-level properties name no case
    assert _outcomes(results) == [
        ("TC-106 order confirmation e-mail is sent", "PASSED", CaseStatus.PASSED),
        ("Refund to the original card", "PASSED", CaseStatus.PASSED),
        ("Download an invoice as PDF", "FAILED", CaseStatus.FAILED),
    ]
    assert all(r.ids is None for r in results)


def test_nested_suites_give_each_case_its_nearest_named_suite() -> None:
    # Given PHPUnit's report: suites nested three deep, the outer one unnamed
    results = _parse("nested.xml")
    # Then cases carry their classname, or the nearest named suite when they have none
    assert [(r.name, r.suite, r.ids) for r in results] == [
        ("testApplyDiscountCode", "Checkout.CartTest", ("TC-102", "TC-106")),
        ("testGuestCheckout TC-101", "Checkout\\CartTest", None),
        ("testPdfInvoice", "Billing.InvoiceTest", None),
    ]


def test_a_target_can_map_errors_to_blocked() -> None:
    # Given a target that counts an <error> (broken environment) as blocked rather than failed
    mapping = ResultMapping.model_validate({"result_map": {"error": "blocked"}})
    # Then errors are blocked there, and the other JUnit results keep their defaults
    assert [mapping.status_for(r.result) for r in _parse("pytest.xml")] == [
        CaseStatus.PASSED,
        CaseStatus.FAILED,
        CaseStatus.BLOCKED,
        CaseStatus.SKIPPED,
    ]


CATALOG = [
    TargetCase(id=f"tm-{n}", key=f"TC-{n}", title=title, labels=(f"junit:TC-{n}",))
    for n, title in [(101, "Guest checkout"), (102, "Discount"), (103, "Expired card"), (104, "Currencies")]
] + [TargetCase(id="tm-108", key="TC-108", title="Download an invoice as PDF")]


def _matcher(**config: object) -> CaseMatcher:
    matching = CaseMatching.model_validate(config)
    return CaseMatcher(matching, lambda: CaseCatalog.build(CATALOG, matching.match_by, matching.match_field))


def _junit(name: str, ids: tuple[str, ...] | None = None) -> CaseResult:
    return CaseResult(case_id=0, name=name, result="PASSED", status=CaseStatus.PASSED, ids=ids)


def test_junit_cases_match_by_name_tokens_declared_ids_field_and_title() -> None:
    matcher = _matcher(match_by=["case_map", "id_token", "title"], case_map={0: "tm-never"})
    # An id in the name, then the ids declared in properties (several); case_map never applies to JUnit
    assert matcher.match(_junit("test_discount_code[TC-102]")) == ["tm-102"]
    assert matcher.match(_junit("test_card_payments", ("TC-103", "TC-104"))) == ["tm-103", "tm-104"]
    assert matcher.match(_junit("TC-101 checkout", ("TC-104",))) == ["tm-101", "tm-104"]
    # The title when nothing else matched
    assert matcher.match(_junit("Download an invoice as PDF")) == ["tm-108"]
    assert matcher.match(_junit("test_unknown")) == []
    # The field mode looks the declared ids up in the target's labels
    by_field = _matcher(match_by=["field"], match_field="junit")
    assert by_field.match(_junit("anything", ("TC-101", "TC-103"))) == ["tm-101", "tm-103"]


@pytest.mark.parametrize(
    ("report", "message"),
    [
        (b"", "not well-formed XML: no element found at line 1, column 0"),
        (
            b"<testsuite>\n  <testcase name='a'>\n</testsuite>",
            "not well-formed XML: mismatched tag at line 3, column 2",
        ),
        (b"<?xml version='1.0'?><coverage/>", "root is <coverage>, expected <testsuites> or <testsuite>"),
        (b"<testsuites><testsuite name='empty' tests='0'/></testsuites>", "holds no test case"),
        (b"<testsuite><testcase classname='x'/></testsuite>", "a <testcase> without a name"),
        (
            b'<!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><testsuite/>',
            "declares a DOCTYPE",
        ),
    ],
)
def test_a_report_that_is_not_a_junit_report_is_refused_with_the_reason(report: bytes, message: str) -> None:
    with pytest.raises(InvalidPayload, match="JUnit report") as refused:
        list(parse_report(io.BytesIO(report)))
    assert message in str(refused.value)


class _GeneratedReport(io.RawIOBase):
    """A report of `cases` test cases, produced as it is read (never whole in memory)."""

    def __init__(self, cases: int) -> None:
        self._chunks = self._generate(cases)
        self._buffer = b""

    @staticmethod
    def _generate(cases: int) -> Iterator[bytes]:
        yield b"<testsuites><testsuite name='generated'>"
        for n in range(cases):
            failure = b"<failure message='boom'>" + b"x" * 200 + b"</failure>" if n % 7 == 0 else b""
            yield b"<testcase classname='gen.Case' name='case %d TC-%d'>%s</testcase>" % (n, n, failure)
        yield b"</testsuite></testsuites>"

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while len(self._buffer) < len(target):
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self._buffer += chunk
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def test_a_large_report_is_parsed_in_bounded_memory() -> None:
    # Given a report of 30,000 cases (about 4.5 MB) read as a stream
    cases = 30_000
    tracemalloc.start()
    try:
        failed = 0
        count = 0
        for result in parse_report(io.BufferedReader(_GeneratedReport(cases))):
            count += 1
            failed += result.status is CaseStatus.FAILED
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then every case comes out, and memory never held more than a sliver of the report
    assert (count, failed) == (cases, len(range(0, cases, 7)))
    assert peak < 2 * 1024 * 1024, f"peak {peak:,} bytes"
