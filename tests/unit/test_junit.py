"""JUnit reports as they come from real runners (pytest, Maven Surefire, PHPUnit, GoogleTest, jest, mocha,
TestReports.jl, trcli users' reports; sources in events/junit/README.md), parsed into results and matched
to test-management cases by the same rules as Testsigma results."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator

import pytest

from testrelay.errors import InvalidPayload
from testrelay.junit import JunitCase, parse_report
from testrelay.models.execution import CaseResult, CaseStatus
from testrelay.models.routes import JunitReading
from testrelay.sync.matching import CaseCatalog, CaseMatcher, CaseMatching, TargetCase
from testrelay.sync.status_map import ResultMapping
from tests.support import EVENTS


def _parse(name: str, reading: JunitReading | None = None) -> list[JunitCase]:
    with (EVENTS / "junit" / name).open("rb") as stream:
        return list(parse_report(stream, reading))


def _outcomes(results: list[JunitCase]) -> list[tuple[str, str, CaseStatus]]:
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


def test_a_case_without_a_name_is_named_after_its_class_and_says_so() -> None:
    # Given Surefire 3's report of a class whose @BeforeAll failed: one <testcase name=""> with the failure
    [result] = _parse("surefire-beforeall.xml")
    # Then the failure is read, named after the class, and the name says the report gave it none
    assert (result.name, result.suite, result.status) == (
        "test.TestJUnit5FailingInBeforeAll (test case without a name)",
        "test.TestJUnit5FailingInBeforeAll",
        CaseStatus.FAILED,
    )
    # And jest's empty title (no classname either) is named after its suite, the test file
    assert [(r.name, r.suite) for r in _parse("jest.xml")] == [
        ("e2e/__tests__/promiseReject.test.ts (test case without a name)", "e2e/__tests__/promiseReject.test.ts"),
        ("runs without errors", "Repl cli"),
    ]


def test_googletest_disabled_and_skipped_tests_are_skipped_and_setup_failures_are_read() -> None:
    results = {(r.suite, r.name): r.status for r in _parse("googletest.xml")}
    # DISABLED_ tests (status="notrun" result="suppressed") never ran: skipped, not passed
    assert results["MixedResultTest", "DISABLED_test"] is CaseStatus.SKIPPED
    assert results["DisabledTest", "DISABLED_test_not_run"] is CaseStatus.SKIPPED
    # GTEST_SKIP is skipped; skipped after a failure stays failed
    assert results["SkippedTest", "Skipped"] is CaseStatus.SKIPPED
    assert results["SkippedTest", "SkippedAfterFailure"] is CaseStatus.FAILED
    # A failing SetUpTestSuite/TearDownTestSuite (name="" classname="") fails under its suite's name
    assert results["SetupFailTest", "SetupFailTest (test case without a name)"] is CaseStatus.FAILED
    assert results["SetupFailTest", "NoopPassingTest"] is CaseStatus.SKIPPED
    assert results["TearDownFailTest", "TearDownFailTest (test case without a name)"] is CaseStatus.FAILED
    assert results["MixedResultTest", "Succeeds"] is CaseStatus.PASSED


def test_a_status_attribute_that_says_disabled_is_a_skip() -> None:
    # Given the tst framework's report: status="disabled" on cases without any child element
    results = _parse("tst-disabled.xml")
    disabled = [r for r in results if r.name.startswith("disabled_")]
    # Then every disabled test is skipped, and the counts are the report's own (31 tests, 5 disabled)
    assert len(disabled) == 5
    assert {r.status for r in disabled} == {CaseStatus.SKIPPED}
    assert [sum(r.result == kind for r in results) for kind in ("PASSED", "FAILED", "ERROR", "SKIPPED")] == [
        6,
        19,
        1,
        5,
    ]


def test_errors_outside_any_test_case_are_a_result_of_the_suite() -> None:
    # Given TestReports.jl's report: three <error> directly in suite "Math/other", beside a broken test (<skip/>)
    results = _parse("testreports-jl.xml")
    other = [(r.name, r.result) for r in results if r.suite == "Math/other"]
    # Then the suite's errors are one error result named after the suite; the test keeps its own result
    assert other == [("sqrt(-1)", "SKIPPED"), ("Math/other (suite-level error)", "ERROR")]
    # (13 tests the report counts, the broken one it does not, and the suite's own result)
    assert len(results) == 15
    # And a suite whose only result is such an error is read, not refused for holding no test case
    [alone] = _parse("testreports-jl-suite-error.xml")
    assert (alone.name, alone.status) == ("Top level tests (suite-level error)", CaseStatus.FAILED)
    # And so is a suite with no case that counts an error only in its attributes (a TAP script that died)
    [died] = _parse("tap-formatter-junit-die.xml")
    assert (died.name, died.result) == ("data_tests_die (suite-level error)", "ERROR")


def test_a_title_in_classname_does_not_name_the_suite() -> None:
    # mocha-junit-reporter (also Cypress'): name = suite titles + test title, classname = the test title
    [mocha] = _parse("mocha.xml")
    assert (mocha.name, mocha.suite) == (
        "Config files default config projectUTCOffset should be a callable with current UTC offset",
        "default config",
    )
    # Cypress (here run by saucectl): the suite is the spec file, not the title two specs share
    assert [(r.name, r.suite) for r in _parse("cypress-saucectl.xml")][:2] == [
        ("Component 1 Verify page structure", "Firefox - test_suite_1.cy.js"),
        ("Component 2 Verify page structure", "Firefox - test_suite_2.cy.js"),
    ]
    # Nette Tester writes the same text in both: the unnamed enclosing suite names no suite either
    assert {r.suite for r in _parse("nette-tester.xml")} == {None}


def test_a_report_in_an_encoding_expat_cannot_read_is_decoded() -> None:
    # Given a report declared and written in GB18030 (multi-byte, unknown to expat)
    results = _parse("gb18030.xml")
    # Then it reads as its UTF-8 original does
    assert results[0].name == "test 1 헴䜝헱홐㣇㿷䔭𒍺𡓿𠄉㦓"
    assert [r.result for r in results] == [r.result for r in _parse_bytes(_utf8_original("gb18030.xml"))]


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("Shift_JIS", "決済テスト"),
        ("EUC-JP", "決済テスト"),
        ("GBK", "支付测试"),
        ("Big5", "支付測試"),
        ("EUC-KR", "결제 테스트"),
        ("windows-1251", "Оплата"),
        ("windows-1252", "Zahlung für Café"),
        ("ISO-8859-2", "Płatność"),
    ],
)
def test_every_encoding_python_knows_is_read(encoding: str, text: str) -> None:
    report = f"<?xml version='1.0' encoding='{encoding}'?><testsuite name='{text}'><testcase name='{text} TC-7'/>"
    [result] = _parse_bytes((report + "</testsuite>").encode(encoding))
    assert (result.name, result.suite) == (f"{text} TC-7", text)


def _parse_bytes(report: bytes, reading: JunitReading | None = None) -> list[JunitCase]:
    return list(parse_report(io.BytesIO(report), reading))


def _utf8_original(name: str) -> bytes:
    text = (EVENTS / "junit" / name).read_bytes().decode("gb18030")
    return text.replace('encoding="GB18030"', 'encoding="utf-8"').encode("utf-8")


TRCLI = JunitReading(trcli_ids=True)


def test_trcli_case_ids_in_names_are_read_when_the_route_asks() -> None:
    # Given trcli's test data: ids in brackets, lists, underscores and JUnit 5 method names
    ids = [r.ids for r in _parse("trcli-ids-in-names.xml", TRCLI)]
    assert ids == [
        ("C1050389", "C1050390", "C1050391"),
        ("C1050392", "C1050393"),
        ("C1050394", "C1050395", "C1050396"),
        ("C1050397",),
        ("C1050398",),
    ]
    assert [r.ids for r in _parse("trcli-junit5-names.xml", TRCLI)] == [
        ("C120013",),
        ("C123",),
        ("C456",),
        ("C789",),
        ("C999",),
        ("C555",),
    ]
    # And a route that does not ask reads no such id (existing routes see no change)
    assert {r.ids for r in _parse("trcli-ids-in-names.xml")} == {None}


def test_trcli_test_id_properties_become_the_tokens_the_route_names() -> None:
    reading = JunitReading(trcli_ids=True, trcli_id_format="TC-{id}")
    assert [r.ids for r in _parse("trcli-test-id-property.xml", reading)] == [
        ("TC-1050381",),
        ("TC-1050382", "TC-1050383", "TC-1050384"),
        ("TC-1050385", "TC-1050386", "TC-1050387", "TC-1050388"),
    ]
    # A C-number that is part of a word is not an id; a "C" word without digits neither
    [result] = _parse_bytes(b"<testsuite><testcase name='ABC123 checkout C12x CTO C7'/></testsuite>", TRCLI)
    assert result.ids == ("C7",)


def test_a_trcli_id_format_must_name_the_id() -> None:
    with pytest.raises(ValueError, match="placeholder"):
        JunitReading(trcli_id_format="C{case}")


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
        (b"<?xml version='1.0' encoding='x-klingon'?><testsuite/>", "encoding 'x-klingon', which is not a known"),
        (b"<?xml version='1.0' encoding='base64'?><testsuite/>", "declares encoding 'base64', which is not a text"),
        (b"<?xml version='1.0' encoding='Shift_JIS'?><testsuite name='\x82'/>", "is not valid Shift_JIS"),
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


@pytest.mark.parametrize("name", sorted(path.name for path in (EVENTS / "junit").glob("*.xml")))
def test_every_result_read_is_stored_as_the_model_pydantic_would_validate(name: str) -> None:
    # Given every sample report (results are tuples of fields made without pydantic's validation pass, for speed)
    for reading in (None, TRCLI):
        for result in _parse(name, reading):
            # Then what is stored of each is what the validated CaseResult of its fields dumps, and reads back
            # as that model: the same fields, the same JSON
            validated = CaseResult.model_validate(result.stored())
            assert validated.stored() == result.stored()
            assert result.case_result() == validated
            assert result.case_result().model_dump_json() == validated.model_dump_json()
            assert (validated.case_id, validated.name, validated.status) == (0, result.name, result.status)


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


def test_megabytes_of_output_in_one_case_are_not_held() -> None:
    # Given one case with 20 MB of <system-out> (a chatty integration test), read as a stream
    output = b"x" * (20 * 1024 * 1024)
    report = (
        b"<testsuite name='s'><testcase name='chatty'><system-out>" + output + b"</system-out></testcase></testsuite>"
    )
    tracemalloc.start()
    try:
        [result] = parse_report(io.BytesIO(report))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then the case is read, and its output never was
    assert result.status is CaseStatus.PASSED
    assert peak < 2 * 1024 * 1024, f"peak {peak:,} bytes"


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        # A UTF-8 byte order mark (Windows tools write one)
        (b"\xef\xbb\xbf<?xml version='1.0' encoding='utf-8'?><testsuite><testcase name='a'/></testsuite>", "PASSED"),
        # A UTF-16 report with its byte order mark (PowerShell's default)
        (
            "<?xml version='1.0' encoding='utf-16'?><testsuite><testcase name='a'/></testsuite>".encode("utf-16"),
            "PASSED",
        ),
        # A <testcase> straight under <testsuites>, outside any suite
        (
            b"<testsuites><testcase name='a' classname='c'><skipped message='no GPU'/></testcase></testsuites>",
            "SKIPPED",
        ),
        # Time attributes are not read: a thousands separator or an empty time changes nothing
        (b"<testsuite time='1,234.5'><testcase name='a' time=''><error/></testcase></testsuite>", "ERROR"),
        # Surefire's reruns: failed every time (<failure> and <rerunFailure>), or passed on a rerun
        (b"<testsuite><testcase name='a'><failure/><rerunFailure/><rerunFailure/></testcase></testsuite>", "FAILED"),
        (b"<testsuite><testcase name='a'><flakyFailure/><flakyError/></testcase></testsuite>", "PASSED"),
    ],
)
def test_shapes_met_in_the_corpora_read_as_a_careful_reader_reads_them(report: bytes, expected: str) -> None:
    [result] = _parse_bytes(report)
    assert result.result == expected
