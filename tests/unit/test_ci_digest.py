"""Newly failing cases: compared with the route's previous report for the same pull request or branch,
and a repeat of the same job compares with what that job compared with before, never with itself."""

from __future__ import annotations

import dataclasses

from testrelay.models.execution import CaseResult, CaseStatus, RunCounts
from testrelay.relay.ci_digest import compare, digest, history_scope
from tests.support import demo_job


def _case(name: str, status: CaseStatus, duration_ms: int | None = None) -> CaseResult:
    return CaseResult(case_id=1, name=name, result=status.value, status=status, duration_ms=duration_ms)


def test_failures_absent_from_the_previous_report_are_newly_failing() -> None:
    # Given a first report where "login" failed
    first = digest(RunCounts(), [_case("login", CaseStatus.FAILED), _case("cart", CaseStatus.PASSED)])
    stored = compare(first, "job-1", None)
    assert first.newly_failing is None  # nothing to compare with yet
    # When the next job fails "login" and "pay"
    second = digest(RunCounts(), [_case("login", CaseStatus.FAILED), _case("pay", CaseStatus.FAILED)])
    again = compare(second, "job-2", stored)
    # Then only "pay" is new, compared with job-1
    assert [r.name for r in second.newly_failing or []] == ["pay"]
    assert second.compared_with == "job-1"
    # And a repeat of job-2's report still compares with job-1, not with its own first report
    repeat = digest(RunCounts(), [_case("login", CaseStatus.FAILED), _case("pay", CaseStatus.FAILED)])
    compare(repeat, "job-2", again)
    assert [r.name for r in repeat.newly_failing or []] == ["pay"]


def test_the_slowest_cases_come_first_and_cases_without_a_duration_are_left_out() -> None:
    cases = [_case(f"c{n}", CaseStatus.PASSED, n * 10) for n in range(1, 9)] + [_case("x", CaseStatus.PASSED)]
    assert [r.name for r in digest(RunCounts(), cases).slowest] == ["c8", "c7", "c6", "c5", "c4"]


def test_history_is_per_route_repository_and_pull_request_or_branch() -> None:
    job = demo_job()
    on_pr = job.model_copy(update={"event": dataclasses.replace(job.event, pull_request="3")})
    assert history_scope(job) != history_scope(on_pr)
    assert history_scope(job) == history_scope(demo_job())
