"""The whole relay through its HTTP endpoint: GitHub's real workflow_run delivery, signed as GitHub
signs it, ends as one Testsigma run, one Test Management run and one commit status."""

from __future__ import annotations

import time
import uuid
from typing import Any

import requests

from testrelay_local.runtime import LocalRuntime
from testrelay_local.signing import github_headers
from tests.support import commit_statuses, github_fixture, tm_run_cases, wait_for_execution

PAYLOAD = github_fixture("workflow_run.completed.payload.json")


def _post(runtime: LocalRuntime, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(runtime.webhook_url("github"), data=body, headers=headers, timeout=10)


def _vendor_state(runtime: LocalRuntime) -> dict[str, Any]:
    assert runtime.sandbox is not None
    state = runtime.sandbox.state()
    return {vendor: state[vendor] for vendor in ("testsigma", "testsigma_tm", "github")}


def _executions(runtime: LocalRuntime) -> list[str]:
    sfn = runtime.aws.client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=runtime.outputs["StateMachineArn"])["executions"]
    return sorted(execution["name"] for execution in listed)


def test_a_signed_delivery_ends_in_test_management_and_on_the_commit_once(runtime: LocalRuntime) -> None:
    # Given GitHub's published payload, signed with the relay's webhook secret
    delivery = str(uuid.uuid4())
    headers = github_headers(runtime.webhook_secret, PAYLOAD, "workflow_run", delivery)
    # When GitHub delivers it
    answer = _post(runtime, PAYLOAD, headers)
    # Then the relay accepts it at once with one job, which runs to completion
    assert answer.status_code == 202
    body = answer.json()
    assert (body["status"], body["delivery"], body["repository"]) == ("accepted", delivery, "octo-org/octo-repo")
    [job_id] = body["jobs"]
    assert wait_for_execution(runtime, job_id)["status"] == "SUCCEEDED"
    # And exactly one Testsigma run, one Test Management run and one commit status exist
    state = _vendor_state(runtime)
    assert len(state["testsigma"]["runs"]) == 1
    [tm_run] = tm_run_cases(runtime).values()
    assert {c["human_id"]: c["status_name"] for c in tm_run["test_run_cases"]} == {
        "TC-101": "Passed",
        "TC-102": "Passed",
        "TC-103": "Failed",
        "TC-104": "Passed",
        "TC-105": "Untested",
        "TC-106": "Passed",
    }
    [status] = commit_statuses(runtime)
    assert (status["state"], status["description"]) == ("failure", "4 passed, 1 failed, 1 not run")

    # When the same delivery arrives five more times (GitHub's "Redeliver")
    for _ in range(5):
        again = _post(runtime, PAYLOAD, headers)
        assert again.status_code == 202
        assert again.json()["jobs"] == [job_id]
    time.sleep(1.5)  # give the dispatcher time to (not) start anything
    # Then nothing changed anywhere
    assert _executions(runtime) == [job_id]
    assert _vendor_state(runtime) == state


def test_bad_deliveries_are_answered_and_enqueue_nothing(runtime: LocalRuntime) -> None:
    before = _executions(runtime)
    queue = runtime.outputs["JobsQueueUrl"]
    sqs = runtime.aws.client("sqs")

    wrong = _post(runtime, PAYLOAD, github_headers("wrong-secret", PAYLOAD, "workflow_run"))
    assert wrong.status_code == 401
    assert wrong.json()["status"] == "unauthorized"

    broken_body = PAYLOAD[: len(PAYLOAD) // 2]
    broken = _post(runtime, broken_body, github_headers(runtime.webhook_secret, broken_body, "workflow_run"))
    assert broken.status_code == 400
    assert "not valid JSON" in broken.json()["message"]

    push = github_fixture("push.payload.json")
    ignored = _post(runtime, push, github_headers(runtime.webhook_secret, push, "push"))
    assert ignored.status_code == 200
    assert ignored.json()["status"] == "ignored"

    time.sleep(1.5)
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert _executions(runtime) == before
    assert runtime.sandbox is not None
    assert runtime.sandbox.state()["testsigma"]["runs"] == {}


def test_unknown_paths_get_the_http_apis_404(runtime: LocalRuntime) -> None:
    answer = requests.get(f"{runtime.url}/webhooks/github", timeout=10)
    assert answer.status_code == 404
