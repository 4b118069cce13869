"""WebhookFunction through its real handler: what a CI gets back, and what lands on the queue."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from testrelay.aws import queue, secrets
from testrelay.aws.secrets import forget_cached_secrets
from testrelay.ci.registry import PROVIDERS
from testrelay_local.apigw import http_api_event
from testrelay_local.functions import load_handler
from testrelay_local.signing import basic_auth_headers, github_headers, gitlab_headers
from tests.ci_fixtures import delivery
from tests.integration.handlers.conftest import WEBHOOK_SECRET, Stack
from tests.support import FakeLambdaContext, github_fixture

handler = load_handler("functions/webhook")
DELIVERY = "9c5b2a52-8d5e-11ee-8b56-1a2b3c4d5e6f"


def _post(body: bytes, headers: dict[str, str], provider: str = "github") -> tuple[int, dict[str, Any]]:
    event = http_api_event("POST", f"/webhooks/{provider}", headers, body)
    answer = handler(event, FakeLambdaContext())
    return answer["statusCode"], json.loads(answer["body"])


def test_a_signed_workflow_run_enqueues_one_job_per_matching_route(stack: Stack) -> None:
    # Given GitHub's real workflow_run.completed payload, signed with the configured secret
    body = github_fixture("workflow_run.completed.payload.json")
    # When it is posted
    status, answer = _post(body, github_headers(WEBHOOK_SECRET, body, "workflow_run", DELIVERY))
    # Then it is accepted with the delivery id and one job for each of the two matching routes
    assert status == 202
    assert answer["status"] == "accepted"
    assert answer["delivery"] == DELIVERY
    assert len(answer["jobs"]) == 2
    jobs = stack.queued()
    assert sorted(job["id"] for job in jobs) == sorted(answer["jobs"])
    checkout = next(job for job in jobs if job["route"]["name"] == "octo-checkout")
    assert checkout["event"]["commit_sha"] == "3484a3fb816e0859fd6e1cea078d76385ff50625"
    assert checkout["route"]["testsigma"]["test_plan_id"] == 2741
    assert checkout["schema_version"] == 1


def test_the_same_delivery_always_yields_the_same_job_ids(stack: Stack) -> None:
    body = github_fixture("workflow_run.completed.payload.json")
    headers = github_headers(WEBHOOK_SECRET, body, "workflow_run", DELIVERY)
    _, first = _post(body, headers)
    _, second = _post(body, headers)
    assert first["jobs"] == second["jobs"]


def test_a_wrong_signature_is_401_and_enqueues_nothing(stack: Stack) -> None:
    body = github_fixture("workflow_run.completed.payload.json")
    status, answer = _post(body, github_headers("not-the-secret", body, "workflow_run"))
    assert (status, answer["status"]) == (401, "unauthorized")
    assert stack.queued() == []


def test_a_tampered_body_is_401(stack: Stack) -> None:
    body = github_fixture("workflow_run.completed.payload.json")
    headers = github_headers(WEBHOOK_SECRET, body, "workflow_run")
    status, _ = _post(body.replace(b"octo-repo", b"evil-repo"), headers)
    assert status == 401
    assert stack.queued() == []


def test_a_broken_body_is_400_with_the_reason(stack: Stack) -> None:
    body = b'{"action": "completed", "workflow_run": '
    status, answer = _post(body, github_headers(WEBHOOK_SECRET, body, "workflow_run"))
    assert status == 400
    assert "not valid JSON" in answer["message"]
    assert stack.queued() == []


def test_push_and_ping_are_answered_2xx_and_ignored(stack: Stack) -> None:
    push = github_fixture("push.payload.json")
    status, answer = _post(push, github_headers(WEBHOOK_SECRET, push, "push"))
    assert (status, answer["status"]) == (200, "ignored")
    assert "only workflow_run" in answer["reason"]
    ping = github_fixture("ping.payload.json")
    status, answer = _post(ping, github_headers(WEBHOOK_SECRET, ping, "ping"))
    assert status == 200
    assert answer["reason"].startswith("pong")
    assert stack.queued() == []


def test_an_event_no_route_wants_says_why(stack: Stack, monkeypatch: Any) -> None:
    body = github_fixture("workflow_run.completed.payload.json").replace(
        b'"conclusion": "success"', b'"conclusion": "failure"'
    )
    status, answer = _post(body, github_headers(WEBHOOK_SECRET, body, "workflow_run"))
    assert (status, answer["status"]) == (200, "ignored")
    assert "outcome 'failure' not in ['success']" in answer["reason"]
    assert stack.queued() == []


def test_an_unknown_provider_is_404(stack: Stack) -> None:
    status, answer = _post(b"{}", {"Content-Type": "application/json"}, provider="teamcity")
    assert (status, answer["status"]) == (404, "unknown_provider")


def test_a_routes_file_error_is_a_500_that_hides_details(stack: Stack, monkeypatch: Any, tmp_path: Any) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("routes: [{name: x}]")
    monkeypatch.setenv("ROUTES_FILE", str(broken))
    body = github_fixture("workflow_run.completed.payload.json")
    status, answer = _post(body, github_headers(WEBHOOK_SECRET, body, "workflow_run"))
    assert status == 500
    assert "misconfigured" in answer["message"]
    assert stack.queued() == []


# ------------------------------------------------------------------ real-world bodies and queue faults


def _every_provider_secret(stack: Stack) -> None:
    """The stack's webhook secret with a key for every provider (the conftest sets only GitHub's)."""
    secret_id = boto3.client("secretsmanager").list_secrets()["SecretList"][0]["ARN"]
    values = {name: WEBHOOK_SECRET for name in PROVIDERS}
    boto3.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=json.dumps(values))
    forget_cached_secrets()


class _RefusingSqs:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def send_message_batch(self, **_: Any) -> dict[str, Any]:
        raise self.error


@pytest.mark.parametrize(
    "error",
    [
        ClientError({"Error": {"Code": "AWS.SimpleQueueService.BatchRequestTooLong"}}, "SendMessageBatch"),
        ClientError({"Error": {"Code": "ThrottlingException"}}, "SendMessageBatch"),
        EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com"),
        ReadTimeoutError(endpoint_url="https://sqs.us-east-1.amazonaws.com"),
    ],
    ids=["batch-too-long", "throttled", "endpoint-unreachable", "read-timeout"],
)
def test_any_queue_failure_is_the_503_redeliver_answer(stack: Stack, monkeypatch: Any, error: Exception) -> None:
    # Given a queue that refuses the batch, in any of the ways SQS and botocore refuse
    monkeypatch.setattr(queue, "client", lambda name: _RefusingSqs(error))
    body = github_fixture("workflow_run.completed.payload.json")
    # When a delivery that matches routes comes in
    status, answer = _post(body, github_headers(WEBHOOK_SECRET, body, "workflow_run"))
    # Then the CI is told to redeliver later, the documented answer
    assert status == 503
    assert answer["message"] == "jobs could not be queued; redeliver later"


class _UnavailableSecretsManager:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_secret_value(self, **_: Any) -> dict[str, Any]:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ClientError({"Error": {"Code": "ThrottlingException"}}, "GetSecretValue"), 503),
        (EndpointConnectionError(endpoint_url="https://secretsmanager.us-east-1.amazonaws.com"), 503),
        (ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetSecretValue"), 500),
    ],
    ids=["throttled", "unreachable", "access-denied"],
)
def test_a_secrets_manager_outage_is_503_and_a_denied_read_stays_500(
    stack: Stack, monkeypatch: Any, error: Exception, status: int
) -> None:
    # Given Secrets Manager failing the webhook-secret read (an outage, or a policy that denies it)
    monkeypatch.setattr(secrets, "client", lambda name: _UnavailableSecretsManager(error))
    forget_cached_secrets()
    body = github_fixture("workflow_run.completed.payload.json")
    # When a delivery comes in
    answer_status, answer = _post(body, github_headers(WEBHOOK_SECRET, body, "workflow_run"))
    # Then an outage asks the CI to redeliver later; a denied read is a configuration fault; nothing is queued
    assert answer_status == status
    assert ("redeliver later" in answer["message"]) == (status == 503)
    assert stack.queued() == []


def test_a_1_mb_field_is_a_400_naming_the_limit_and_enqueues_nothing(stack: Stack) -> None:
    payload = json.loads(github_fixture("workflow_run.completed.payload.json"))
    payload["workflow_run"]["name"] = "x" * 1_100_000
    body = json.dumps(payload).encode()
    status, answer = _post(body, github_headers(WEBHOOK_SECRET, body, "workflow_run"))
    assert status == 400
    assert "at most 1024 characters" in answer["message"]
    assert stack.queued() == []


def test_a_github_form_encoded_delivery_is_accepted(stack: Stack) -> None:
    # Given the delivery GitHub sends when the hook's content type is application/x-www-form-urlencoded
    payload = github_fixture("workflow_run.completed.payload.json")
    form = b"payload=" + quote_plus(payload.decode()).encode()
    headers = {
        **github_headers(WEBHOOK_SECRET, form, "workflow_run", DELIVERY),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    # When it is posted, signed over the raw form body
    status, answer = _post(form, headers)
    # Then it is the same as the JSON delivery
    assert (status, len(answer["jobs"])) == (202, 2)


def test_gitlab_empty_body_is_200_ignored_with_a_reason_that_holds(stack: Stack) -> None:
    _every_provider_secret(stack)
    status, answer = _post(b"{}", gitlab_headers(WEBHOOK_SECRET), provider="gitlab")
    assert (status, answer["status"]) == (200, "ignored")
    assert "object_kind" in answer["reason"]
    assert stack.queued() == []


def test_a_fork_pull_request_run_is_ignored_by_routes_that_do_not_opt_in(stack: Stack) -> None:
    body = github_fixture("workflow_run.completed.from-fork.variant.payload.json")
    status, answer = _post(body, github_headers(WEBHOOK_SECRET, body, "workflow_run"))
    assert (status, answer["status"]) == (200, "ignored")
    assert "match.forks" in answer["reason"]
    assert stack.queued() == []


def test_jenkins_builds_of_two_folders_with_the_same_job_name_are_two_jobs(stack: Stack) -> None:
    # Given build 7 of `main` in two multibranch projects, both matched by the octo-smoke-like route
    _every_provider_secret(stack)
    answers = []
    for project in ("shop", "billing"):
        sent = delivery("jenkins", f"notification-multibranch-{project}.variant")
        body = sent.body.replace(b"acme/", b"octo-org/")
        answers.append(_post(body, basic_auth_headers(WEBHOOK_SECRET), provider="jenkins"))
    # Then each is accepted with its own job: the second is no redelivery of the first
    assert [status for status, _ in answers] == [202, 202]
    assert set(answers[0][1]["jobs"]).isdisjoint(answers[1][1]["jobs"])
