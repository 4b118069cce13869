"""Every CI but GitHub through the relay's HTTP endpoint: each vendor's published payload, signed or
authenticated as that CI does it, triggers one Testsigma run, writes to Test Management and reports
back where the CI has a status API (GitLab, Bitbucket); the others keep summary and link in the ledger."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from testrelay_local.runtime import LocalRuntime
from testrelay_local.signing import basic_auth_headers, bitbucket_headers, circleci_headers, generic_headers
from tests.ci_fixtures import delivery
from tests.support import ledger, start_testsigma_run, tm_run_cases, wait_for_execution

ROUTES_FILE = Path(__file__).parent / "ci_routes.yaml"
SUMMARY = "4 passed, 1 failed, 1 not run"
GENERIC_BODY = json.dumps(
    {
        "repository": "acme/shop",
        "outcome": "success",
        "branch": "main",
        "commit_sha": "0123456789abcdef0123456789abcdef01234567",
        "pipeline_name": "nightly",
        "run_url": "https://ci.acme.example/runs/77",
        "delivery_id": "acme-run-77",
    }
).encode()


def _sent(provider: str, name: str, secret: str) -> tuple[bytes, dict[str, str]]:
    """The vendor's payload with the headers it came with, authenticated with the relay's secret."""
    if provider == "generic":
        return GENERIC_BODY, generic_headers(secret, GENERIC_BODY)
    fixture = delivery(provider, name)
    headers = dict(fixture.headers)
    if provider == "gitlab":
        headers["x-gitlab-token"] = secret
    elif provider == "circleci":
        headers["circleci-signature"] = circleci_headers(secret, fixture.body)["circleci-signature"]
    elif provider == "bitbucket":
        headers["x-hub-signature"] = bitbucket_headers(secret, fixture.body)["X-Hub-Signature"]
    else:
        headers["authorization"] = basic_auth_headers(secret)["Authorization"]
    return fixture.body, headers


def _post(runtime: LocalRuntime, provider: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(runtime.webhook_url(provider), data=body, headers=headers, timeout=10)


def _statuses(runtime: LocalRuntime, vendor: str, repository: str) -> list[dict[str, Any]]:
    assert runtime.sandbox is not None
    by_sha = runtime.sandbox.state()[vendor]["statuses"].get(repository, {})
    return [status for statuses in by_sha.values() for status in statuses]


CASES = [
    ("gitlab", "pipeline", "gitlab-org/gitlab-test"),
    ("circleci", "workflow-completed", "circleci/webhook-service"),
    ("jenkins", "notification-completed", "evgeny-goldin/asgard"),
    ("azure-devops", "build.complete", "be9b3917-87e6-42a4-a549-2bc06a7a878f"),
    ("bitbucket", "repo-commit_status_updated", "team_name/repo_name"),
    ("generic", "", "acme/shop"),
]


@pytest.mark.parametrize(("provider", "name", "repository"), CASES)
def test_a_delivery_runs_the_plan_writes_back_and_reports_once(
    runtime: LocalRuntime, provider: str, name: str, repository: str
) -> None:
    # Given the CI's own payload, authenticated with the relay's secret
    body, headers = _sent(provider, name, runtime.webhook_secret)
    # When the CI delivers it
    answer = _post(runtime, provider, body, headers)
    # Then one job is accepted and runs to completion
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert (accepted["status"], accepted["repository"]) == ("accepted", repository)
    [job_id] = accepted["jobs"]
    assert wait_for_execution(runtime, job_id)["status"] == "SUCCEEDED"
    # And one Testsigma run and one Test Management run with every case exist
    assert runtime.sandbox is not None
    [run] = runtime.sandbox.state()["testsigma"]["runs"].values()
    [tm_run] = tm_run_cases(runtime).values()
    assert len(tm_run["test_run_cases"]) == 6
    # And the job's record keeps the summary and both links
    record = ledger(runtime).get_job(job_id)
    assert record is not None
    assert (record["state"], record["summary"]) == ("reported", SUMMARY)
    assert record["run_url"].endswith(f"/runs/{run['id']}")
    # And the CI gets the summary where it has a status API
    if provider == "gitlab":
        [status] = _statuses(runtime, "gitlab", repository)
        assert (status["status"], status["name"], status["description"]) == ("failed", "testrelay/every-ci", SUMMARY)
        assert (status["ref"], status["pipeline_id"]) == ("master", 31)
        assert status["target_url"] == record["run_url"]
    elif provider == "bitbucket":
        [status] = _statuses(runtime, "bitbucket", repository)
        assert (status["key"], status["state"], status["description"]) == ("testrelay-every-ci", "FAILED", SUMMARY)
        assert status["url"] == record["run_url"]
    else:
        assert record["ci_status_posted"] is False
        assert record["ci_run_url"]

    # When the CI delivers it again (Bitbucket: under a new request id)
    if provider == "bitbucket":
        headers = {**headers, "x-request-uuid": "00000000-0000-4000-8000-0000000000ff"}
    again = _post(runtime, provider, body, headers)
    # Then it names the same job, and nothing new runs
    assert again.status_code == 202
    assert again.json()["jobs"] == [job_id]
    time.sleep(1.0)
    assert len(runtime.sandbox.state()["testsigma"]["runs"]) == 1


def test_jenkins_finalized_after_completed_starts_nothing_more(runtime: LocalRuntime) -> None:
    # Given a build that was announced COMPLETED and ran its job
    body, headers = _sent("jenkins", "notification-completed", runtime.webhook_secret)
    finalized = body.replace(b'"COMPLETED"', b'"FINALIZED"')
    # When its FINALIZED notification arrives
    answer = _post(runtime, "jenkins", finalized, headers)
    # Then it is answered 200 "ignored" with the reason
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"
    assert "repeats COMPLETED" in answer.json()["reason"]


@pytest.mark.parametrize(("provider", "name", "repository"), CASES)
def test_wrong_secrets_are_401_with_a_json_body(
    runtime: LocalRuntime, provider: str, name: str, repository: str
) -> None:
    body, headers = _sent(provider, name, "not-the-secret")
    answer = _post(runtime, provider, body, headers)
    assert answer.status_code == 401
    assert answer.json()["status"] == "unauthorized"


def test_gitlab_bodies_that_do_not_parse_are_2xx_so_the_hook_stays_enabled(runtime: LocalRuntime) -> None:
    _, headers = _sent("gitlab", "pipeline", runtime.webhook_secret)
    answer = _post(runtime, "gitlab", b"{broken", headers)
    assert answer.status_code == 200
    assert answer.json()["status"] == "ignored"
    assert "does not parse" in answer.json()["reason"]


def test_a_ci_step_hands_over_a_run_it_started_through_the_generic_hook(runtime: LocalRuntime) -> None:
    # Given a run a CI step started in Testsigma itself
    started = start_testsigma_run(runtime)
    # When the step tells the relay through the generic hook
    body = json.dumps({"repository": "acme/shop", "outcome": "success", "testsigma_run_id": started["id"]}).encode()
    answer = requests.post(
        runtime.webhook_url("generic"), data=body, headers=generic_headers(runtime.webhook_secret, body), timeout=10
    )
    # Then a result-sync job writes that run's results and Testsigma runs nothing new
    assert answer.status_code == 202, answer.text
    [job_id] = answer.json()["jobs"]
    assert wait_for_execution(runtime, job_id)["status"] == "SUCCEEDED"
    assert list(runtime.sandbox.state()["testsigma"]["runs"]) == [str(started["id"])]
    [tm_run] = tm_run_cases(runtime).values()
    assert len(tm_run["test_run_cases"]) == 6
