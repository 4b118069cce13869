"""CI feedback end to end: jobs built from the vendors' published payloads run through the queue, the
real state machine and the sandbox over HTTP, and leave a GitHub check run with its annotations, a
pull-request comment or merge-request note edited in place, and a Bitbucket Code Insights report."""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from testrelay.ci.registry import PROVIDERS
from testrelay.models.ci_event import CiEvent
from testrelay.models.job import Job
from testrelay.models.routes import RouteAction
from testrelay.routing import load_routes
from testrelay_local.runtime import LocalRuntime
from testrelay_local.sandbox import SandboxSeed
from testrelay_local.sandbox.seed import PlanCaseSeed, PlanSeed
from tests.ci_fixtures import delivery
from tests.support import github_event, ledger, run_job

ROUTES_FILE = Path(__file__).parent / "feedback_routes.yaml"
ROUTES = load_routes(ROUTES_FILE)
MANY_PLAN = 5151
MANY_FAILED = 60


def _with_many_failures(runtime: LocalRuntime) -> None:
    """The demo data plus plan 5151: 120 cases, 60 of them failing (more than GitHub's 50 a request)."""
    assert runtime.sandbox is not None
    seed = SandboxSeed.demo()
    cases = [
        PlanCaseSeed(
            testCaseId=70_000 + number,
            testCaseName=f"Checkout step {number} | pays with *card* <b>{number}</b> @qa-team",
            testSuiteId=700,
            testSuiteName="Checkout",
            result="FAILURE" if number % 2 else "SUCCESS",
        )
        for number in range(1, 121)
    ]
    seed.test_plans[MANY_PLAN] = PlanSeed(name="Many failures", cases=cases)
    runtime.sandbox.load_seed(seed)


def _job(route: str, event: CiEvent, **changes: Any) -> Job:
    return Job.for_event(dataclasses.replace(event, **changes), ROUTES.route(route).action())


def _provider_event(provider: str, name: str) -> CiEvent:
    """The published payload as the webhook normalises it, under a delivery key of its own."""
    fixture = delivery(provider, name)
    event = PROVIDERS[provider].parse(fixture.headers, fixture.body)
    assert isinstance(event, CiEvent)
    return dataclasses.replace(event, delivery_key=f"{event.delivery_key}-{uuid.uuid4()}")


def _github(runtime: LocalRuntime) -> dict[str, Any]:
    assert runtime.sandbox is not None
    state: dict[str, Any] = runtime.sandbox.state()["github"]
    return state


def _requests(runtime: LocalRuntime, vendor: str) -> dict[str, int]:
    assert runtime.sandbox is not None
    endpoints = runtime.sandbox.state()["requests"].get(vendor, {})
    return {endpoint: int(count["calls"]) for endpoint, count in endpoints.items()}


def test_a_failing_run_gets_one_check_run_with_an_annotation_per_failed_case(runtime: LocalRuntime) -> None:
    # Given a plan whose run fails 60 cases, and a route reporting through the GitHub App's check runs
    _with_many_failures(runtime)
    job = _job("gh-many", github_event())
    # When the job runs
    assert run_job(runtime, job)["status"] == "SUCCEEDED"
    # Then the commit has one check run of the route, completed as failed, with the run's link
    [check] = _github(runtime)["check_runs"]["octo-org/octo-repo"]
    record = ledger(runtime).get_job(job.id)
    assert record is not None
    assert (check["name"], check["external_id"], check["head_sha"]) == (
        "testrelay/gh-many",
        job.id,
        job.event.commit_sha,
    )
    assert (check["status"], check["conclusion"]) == ("completed", "failure")
    assert check["details_url"] == record["run_url"]
    # And one annotation per failed case, sent in several updates of at most 50
    annotations = check["annotations"]
    assert len(annotations) == MANY_FAILED == check["output"]["annotations_count"]
    assert {a["annotation_level"] for a in annotations} == {"failure"}
    assert annotations[0]["title"].startswith("Checkout step 1 | pays with *card* <b>1</b> @qa-team")
    updates = _requests(runtime, "github").get("PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}", 0)
    assert updates >= 3  # completed, then 50 + 10 annotations
    # And the summary counts each status and escapes what the case names hold
    summary = check["output"]["summary"]
    assert "| ❌ | failed | 60 |" in summary
    assert "| ✅ | passed | 60 |" in summary
    assert "#### Failed cases (60)" in summary
    assert "<b>" not in summary
    assert "&lt;b&gt;" in summary
    assert "\\*card\\*" in summary
    assert "@\u2060qa" in summary
    # And the route's one-line commit status is replaced by the check run
    assert _github(runtime)["statuses"] == {}
    assert record["ci_status_posted"] is True


def test_the_check_run_goes_in_progress_with_the_run_link_before_it_completes(runtime: LocalRuntime) -> None:
    # Given a route on check runs
    job = _job("gh-checks", github_event(), pull_request="42")
    # When the job runs
    assert run_job(runtime, job)["status"] == "SUCCEEDED"
    # Then the check run was created in progress (one POST), completed by updates, never created twice
    calls = _requests(runtime, "github")
    assert calls.get("POST /repos/{owner}/{repo}/check-runs") == 1
    assert calls.get("POST /app/installations/{installation}/access_tokens", 0) <= 1
    [check] = _github(runtime)["check_runs"]["octo-org/octo-repo"]
    assert check["conclusion"] == "failure"
    assert "#### Test management" in check["output"]["summary"]
    assert "| patient-portal | ✅ written | 6 |" in check["output"]["summary"]
    # And the pull request has the route's summary comment, written as the App
    [comment] = _github(runtime)["comments"]["octo-org/octo-repo"]["42"]
    assert comment["body"].startswith("<!-- testrelay:route=gh-checks -->")
    assert comment["user"]["type"] == "Bot"


def test_a_second_run_of_the_pull_request_edits_the_same_comment(runtime: LocalRuntime) -> None:
    # Given a route that comments on pull requests with a token, and a first run of PR 7
    first = _job("gh-comment", github_event(), pull_request="7")
    assert run_job(runtime, first)["status"] == "SUCCEEDED"
    [comment] = _github(runtime)["comments"]["octo-org/octo-repo"]["7"]
    assert "Newly failing" not in comment["body"]  # nothing earlier to compare with
    # When a new run of the same pull request reports
    second = _job("gh-comment", github_event(), pull_request="7")
    assert run_job(runtime, second)["status"] == "SUCCEEDED"
    # Then the one comment is edited in place, now comparing with the first run
    [edited] = _github(runtime)["comments"]["octo-org/octo-repo"]["7"]
    assert (edited["id"], edited["edits"]) == (comment["id"], 1)
    assert "#### Newly failing (0)" in edited["body"]
    assert second.id in edited["body"].replace("\\", "")
    # And the token's commit status is there too (the route does not use check runs)
    assert _github(runtime)["statuses"]["octo-org/octo-repo"]


def test_a_redelivered_job_changes_nothing(runtime: LocalRuntime) -> None:
    # Given a job that reported its check run and comment
    job = _job("gh-checks", github_event(), pull_request="9")
    assert run_job(runtime, job)["status"] == "SUCCEEDED"
    before = _github(runtime)
    calls = _requests(runtime, "github")
    # When the same job is delivered again
    assert run_job(runtime, job)["status"] == "SUCCEEDED"
    time.sleep(1.0)
    # Then GitHub holds the same and heard nothing more
    assert _github(runtime) == before
    assert _requests(runtime, "github") == calls


def test_a_lost_answer_mid_annotations_resumes_on_the_same_check_run(runtime: LocalRuntime) -> None:
    # Given 60 failures and the answer to the first update carrying annotations lost (it was applied)
    _with_many_failures(runtime)
    assert runtime.sandbox is not None
    rule = {"vendor": "github", "method": "PATCH", "path": "/check-runs/\\d+$", "kind": "lost_answer"}
    runtime.sandbox.set_faults(rules=[{**rule, "after": 1, "times": 1}])
    job = _job("gh-many", github_event())
    # When the job runs (its report step repeated)
    assert run_job(runtime, job)["status"] == "SUCCEEDED"
    # Then there is still one check run, with each failure annotated once
    [check] = _github(runtime)["check_runs"]["octo-org/octo-repo"]
    assert check["output"]["annotations_count"] == MANY_FAILED
    titles = [a["title"] for a in check["annotations"]]
    assert len(set(titles)) == len(titles) == MANY_FAILED


def test_gitlab_merge_request_note_is_edited_in_place(runtime: LocalRuntime) -> None:
    # Given GitLab's published pipeline payload, whose pipeline belongs to merge request !1
    event = _provider_event("gitlab", "pipeline")
    assert event.pull_request == "1"
    # When two pipelines of the merge request report
    first = _job("gl-notes", event)
    assert run_job(runtime, first)["status"] == "SUCCEEDED"
    second = _job("gl-notes", event, delivery_key=event.delivery_key + "-rerun")
    assert run_job(runtime, second)["status"] == "SUCCEEDED"
    # Then the merge request has one testrelay note, edited once, and the commit status stays
    assert runtime.sandbox is not None
    gitlab = runtime.sandbox.state()["gitlab"]
    [note] = gitlab["merge_request_notes"]["gitlab-org/gitlab-test"]["1"]
    assert note["body"].startswith("<!-- testrelay:route=gl-notes -->")
    assert note["edits"] == 1
    assert "| ❌ | failed | 1 |" in note["body"]
    assert gitlab["statuses"]["gitlab-org/gitlab-test"]


@pytest.mark.parametrize("repeat", ["upsert", "conflict"])
def test_bitbucket_gets_a_code_insights_report_with_annotations(runtime: LocalRuntime, repeat: str) -> None:
    # Given Bitbucket's published commit status payload, a plan failing 60 cases, either repeat behaviour,
    # and the answer to the second bulk of annotations lost on its way back (the bulk was applied)
    _with_many_failures(runtime)
    assert runtime.sandbox is not None
    runtime.sandbox.configure(bb_annotation_repeat=repeat)
    rule = {"vendor": "bitbucket", "method": "POST", "path": "/annotations$", "kind": "lost_answer"}
    runtime.sandbox.set_faults(rules=[{**rule, "after": 1, "times": 1}])
    event = _provider_event("bitbucket", "repo-commit_status_updated")
    job = _job("bb-insights", event)
    # When the job runs (its report step repeated after the lost answer)
    assert run_job(runtime, job)["status"] == "SUCCEEDED"
    # Then the commit has the route's report with the counts, and one annotation per failed case
    bitbucket = runtime.sandbox.state()["bitbucket"]
    [by_sha] = bitbucket["reports"]["team_name/repo_name"].values()
    report = by_sha["testrelay-bb-insights"]
    data = {item["title"]: item["value"] for item in report["data"]}
    assert (report["report_type"], report["result"]) == ("TEST", "FAILED")
    assert (data["Total"], data["Passed"], data["Failed"]) == (120, 60, 60)
    assert data["Testsigma run"]["href"] == report["link"]
    assert len(report["annotations"]) == MANY_FAILED
    assert {a["result"] for a in report["annotations"]} == {"FAILED"}
    assert len({a["external_id"] for a in report["annotations"]}) == MANY_FAILED
    # And the build status is there too
    [by_key] = bitbucket["statuses"]["team_name/repo_name"].values()
    assert [status["key"] for status in by_key] == ["testrelay-bb-insights"]


def test_a_job_that_fails_completes_its_check_run_with_the_reason(runtime: LocalRuntime) -> None:
    # Given a route on check runs whose test plan does not exist in Testsigma
    action = ROUTES.route("gh-many").action().model_dump()
    action["testsigma"]["test_plan_id"] = 999_999
    job = Job.for_event(github_event(), RouteAction.model_validate(action))
    # When the job fails
    assert run_job(runtime, job)["status"] == "FAILED"
    # Then its check run is completed as failed, saying why, not left in progress
    [check] = _github(runtime)["check_runs"]["octo-org/octo-repo"]
    assert (check["status"], check["conclusion"], check["external_id"]) == ("completed", "failure", job.id)
    assert check["output"]["summary"].startswith("testrelay could not finish this job: ")


def test_a_check_run_whose_creation_answer_was_lost_is_found_again_not_created_twice(runtime: LocalRuntime) -> None:
    # Given GitHub applying the check run's creation but the answer lost on its way back
    assert runtime.sandbox is not None
    rule = {"vendor": "github", "method": "POST", "path": "/check-runs$", "kind": "lost_answer", "times": 1}
    runtime.sandbox.set_faults(rules=[rule])
    job = _job("gh-many", github_event())
    # When the job runs
    assert run_job(runtime, job)["status"] == "SUCCEEDED"
    # Then the run listed for the commit by its external id is the one completed: still one check run
    [check] = _github(runtime)["check_runs"]["octo-org/octo-repo"]
    assert (check["external_id"], check["status"]) == (job.id, "completed")
    assert _requests(runtime, "github")["POST /repos/{owner}/{repo}/check-runs"] == 1
