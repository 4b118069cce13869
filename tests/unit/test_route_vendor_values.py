"""Routes are checked against the values the vendors' documents fix: Testsigma's result enum for
override rules, BrowserStack's statuses (custom ones declared), non-empty Testsigma TM status ids."""

from __future__ import annotations

import pytest

from testrelay.errors import ConfigurationError
from testrelay.models import routes as models
from testrelay.models.execution import CaseStatus
from testrelay.models.vendor_enums import BROWSERSTACK_SYSTEM_STATUSES, TESTSIGMA_RESULTS
from testrelay.routing import parse_routes

ROUTES = """
version: 1
routes:
  - name: checkout
    testsigma: {{test_plan_id: 2741}}
    targets:
      - {target}
"""


def _target(text: str) -> object:
    return parse_routes(ROUTES.format(target=text), source="routes.yaml").routes[0].targets[0]


def _error(text: str) -> str:
    with pytest.raises(ConfigurationError) as error:
        parse_routes(ROUTES.format(target=text), source="routes.yaml")
    return str(error.value)


@pytest.mark.parametrize("result", TESTSIGMA_RESULTS)
def test_every_result_of_the_enum_can_be_overridden(result: str) -> None:
    to = "FAILURE" if result != "FAILURE" else "SUCCESS"
    target = _target(f"{{kind: testsigma_override, overrides: {{{result}: {to}}}}}")
    assert isinstance(target, models.TestsigmaOverrideTarget)
    assert target.overrides == {result: to}


def test_the_display_spellings_are_sent_as_the_enum() -> None:
    # PASSED/FAILED are how some pages show SUCCESS/FAILURE; the override endpoint is documented with the enum
    target = _target("{kind: testsigma_override, overrides: {ABORTED: FAILED, FAILED: passed}}")
    assert isinstance(target, models.TestsigmaOverrideTarget)
    assert target.overrides == {"ABORTED": "FAILURE", "FAILURE": "SUCCESS"}
    # and a result read with either spelling finds its rule
    assert target.override_for(1, "FAILED") == "SUCCESS"
    assert target.override_for(1, "failure") == "SUCCESS"
    assert target.override_for(1, "SUCCESS") is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ("{ABORTED: PASSD}", "ABORTED: 'PASSD' cannot be set; allowed values: SUCCESS, FAILURE, ABORTED, NOT_EXECUTED"),
        ("{NOT_EXECUTED: QUEUED}", "QUEUED is not a result a finished run can get"),
        ("{FLAKY: FAILURE}", "FLAKY: not a Testsigma result; allowed keys: SUCCESS, FAILURE, ABORTED"),
        ("{FAILED: FAILURE}", "FAILED: overridden with the same result, FAILURE: remove the rule"),
        ("{FAILED: SUCCESS, FAILURE: ABORTED}", "FAILURE already has the override SUCCESS"),
    ],
)
def test_override_rules_outside_the_enum_are_refused_naming_route_key_and_values(overrides: str, expected: str) -> None:
    message = _error(f"{{kind: testsigma_override, overrides: {overrides}}}")
    assert "route 'checkout' (routes[0]) key 'targets.0.testsigma_override.overrides'" in message
    assert expected in message


def test_browserstack_system_statuses_are_accepted_in_any_case_and_sent_lower_case() -> None:
    pairs = zip(CaseStatus, BROWSERSTACK_SYSTEM_STATUSES[: len(CaseStatus)], strict=True)
    statuses = ", ".join(f"{s.value}: {name.upper()}" for s, name in pairs)
    target = _target(f"{{kind: browserstack_tm, project_id: PR-1, statuses: {{{statuses}}}}}")
    assert isinstance(target, models.BrowserStackTmTarget)
    assert [target.status_name(s) for s in CaseStatus] == list(BROWSERSTACK_SYSTEM_STATUSES[: len(CaseStatus)])


def test_a_custom_browserstack_status_must_be_declared() -> None:
    message = _error("{kind: browserstack_tm, project_id: PR-1, statuses: {blocked: needs-review}}")
    assert "route 'checkout' (routes[0]) key 'targets.0.browserstack_tm.statuses'" in message
    assert "blocked: 'needs-review' is not a BrowserStack status; allowed: passed, failed, retest, blocked" in message
    assert "custom_statuses (none declared)" in message

    target = _target(
        "{kind: browserstack_tm, project_id: PR-1, custom_statuses: [needs-review], statuses: {blocked: needs-review}}"
    )
    assert isinstance(target, models.BrowserStackTmTarget)
    assert target.status_name(CaseStatus.BLOCKED) == "needs-review"
    assert target.status_name(CaseStatus.PASSED) == "passed"


def test_testsigma_tm_status_ids_may_not_be_empty() -> None:
    message = _error(
        "{kind: testsigma_tm, project_id: p-1, status_ids: {passed: s-1, failed: ' ', blocked: s-3, untested: s-4}}"
    )
    assert "key 'targets.0.testsigma_tm.status_ids': Value error, empty test_run_status_id for: failed" in message
