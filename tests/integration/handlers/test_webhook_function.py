"""WebhookFunction through its real handler: what a CI gets back, and what lands on the queue."""

from __future__ import annotations

import json
from typing import Any

from testrelay_local.apigw import http_api_event
from testrelay_local.functions import load_handler
from testrelay_local.signing import github_headers
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
