"""The routes file: validation errors a user can act on, and matching CI events."""

from __future__ import annotations

import dataclasses
import textwrap

import pytest

from testrelay.errors import ConfigurationError
from testrelay.models.ci_event import CiEvent
from testrelay.models.execution import CaseStatus
from testrelay.models.routes import Polling
from testrelay.route_matching import match_routes
from testrelay.routing import parse_routes

VALID = textwrap.dedent(
    """
    version: 1
    routes:
      - name: checkout
        match:
          providers: [github]
          events: [workflow_run]
          repositories: [octo-org/*]
          branches: [master, "release/*"]
          outcomes: [success, failure]
        testsigma:
          test_plan_id: 2741
          build_number: "{repository}@{short_sha}#{run_number}"
        polling: {first_wait_seconds: 10, backoff_rate: 2, max_wait_seconds: 60, deadline_seconds: 3600}
        targets:
          - kind: testsigma_tm
            project_id: p-1
            status_ids: {passed: s-pass, failed: s-fail, blocked: s-block, untested: s-untested}
            case_map: {9101: c-1}
    """
)


def _event(**changes: object) -> CiEvent:
    base = CiEvent(
        provider="github",
        event="workflow_run",
        delivery_key="d-1",
        repository="octo-org/octo-repo",
        branch="master",
        commit_sha="3484a3fb816e0859fd6e1cea078d76385ff50625",
        pipeline_name="",
        outcome="success",
    )
    return dataclasses.replace(base, **changes)


def test_a_valid_file_loads_with_defaults_filled() -> None:
    config = parse_routes(VALID)
    route = config.routes[0]
    assert route.testsigma.test_plan_id == 2741
    assert route.report_to_ci is True
    target = route.targets[0]
    assert target.name == "testsigma-tm"
    assert target.status_for("SUCCESS") is CaseStatus.PASSED
    assert target.status_for("passed") is CaseStatus.PASSED
    assert target.status_for("STOPPED") is CaseStatus.BLOCKED


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("test_plan_id: 2741", "test_plan_id: -3"), "route 'checkout' (routes[0]) key 'testsigma.test_plan_id'"),
        (("{run_number}", "{secret}"), "key 'testsigma.build_number': Value error, unknown placeholder(s) ['secret']"),
        (("blocked: s-block, ", ""), "status_ids has no test_run_status_id for: blocked"),
        (("name: checkout", "name: Checkout Route"), "(routes[0]) key 'name': Value error, must be 1-40"),
        (("    polling:", "    poling:"), "key 'poling': Extra inputs are not permitted"),
        (("max_wait_seconds: 60", "max_wait_seconds: 1"), "max_wait_seconds must be >= first_wait_seconds"),
        (("case_map: {9101: c-1}", "match_by: [field]"), "match_by includes 'field' but match_field is not set"),
    ],
)
def test_errors_name_the_route_and_the_key(change: tuple[str, str], expected: str) -> None:
    # Given a routes file with one mistake
    text = VALID.replace(*change)
    # When it loads, Then the error names where the mistake is
    with pytest.raises(ConfigurationError) as error:
        parse_routes(text, source="routes.yaml")
    assert expected in str(error.value)
    assert str(error.value).startswith("routes.yaml is invalid")


def test_yaml_syntax_errors_are_reported_as_such() -> None:
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        parse_routes("routes: [", source="routes.yaml")


def test_route_names_must_be_unique() -> None:
    text = VALID + VALID.split("routes:\n", 1)[1]
    with pytest.raises(ConfigurationError, match="route names must be unique, repeated: checkout"):
        parse_routes(text)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (_event(), None),
        (_event(branch="release/1.2"), None),
        (_event(outcome="failure"), None),
        (_event(branch="feature/x"), "branch 'feature/x' not in ['master', 'release/*']"),
        (_event(repository="other/repo"), "repository 'other/repo' not in ['octo-org/*']"),
        (_event(outcome="cancelled"), "outcome 'cancelled' not in ['success', 'failure']"),
        (_event(provider="gitlab"), "provider 'gitlab' not in ['github']"),
    ],
)
def test_routes_match_on_every_field_with_globs(event: CiEvent, reason: str | None) -> None:
    matched, reasons = match_routes(parse_routes(VALID).routes, event)
    if reason is None:
        assert [r.name for r in matched] == ["checkout"]
    else:
        assert matched == []
        assert reasons == [f"route 'checkout': {reason}"]


def test_an_empty_workflow_name_matches_a_star_pattern() -> None:
    text = VALID.replace("outcomes: [success, failure]", "outcomes: [success]\n      workflows: ['*']")
    matched, _ = match_routes(parse_routes(text).routes, _event(pipeline_name=""))
    assert len(matched) == 1


def test_polling_backs_off_to_the_ceiling() -> None:
    polling = Polling(first_wait_seconds=10, backoff_rate=2, max_wait_seconds=60, deadline_seconds=3600)
    assert [polling.wait_after(n) for n in range(5)] == [10, 20, 40, 60, 60]


def test_polling_refuses_settings_that_would_exhaust_the_execution_history() -> None:
    with pytest.raises(ValueError, match="more than 2000 polls"):
        Polling(first_wait_seconds=1, max_wait_seconds=1, deadline_seconds=7 * 24 * 3600)
