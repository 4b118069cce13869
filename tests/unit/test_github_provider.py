"""GitHub deliveries: signature check and normalisation of the vendor's own payloads."""

from __future__ import annotations

import json

import pytest

from testrelay.ci.base import Ignored, WebhookCredential, verify_hmac_sha256
from testrelay.ci.github import GitHubProvider
from testrelay.errors import AuthenticationFailed, InvalidPayload
from testrelay.models.ci_event import CiEvent
from testrelay_local.signing import github_headers
from tests.support import SHARED_FIXTURES, github_fixture

SECRET = "test-secret-placeholder"
provider = GitHubProvider()


def _headers(body: bytes, event: str, delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958") -> dict[str, str]:
    return {k.lower(): v for k, v in github_headers(SECRET, body, event, delivery).items()}


def test_githubs_published_signature_vector_verifies() -> None:
    # Given the test vector from GitHub's documentation
    body = b"Hello, World!"
    signature = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    # When / Then: it verifies, and one flipped byte does not
    verify_hmac_sha256("It's a Secret to Everybody", body, signature, prefix="sha256=")
    with pytest.raises(AuthenticationFailed, match="does not match"):
        verify_hmac_sha256("It's a Secret to Everybody", b"Hello, World?", signature, prefix="sha256=")


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing"),
        ({"x-hub-signature-256": "sha1=abc"}, "must start with"),
        ({"x-hub-signature-256": "sha256=" + "0" * 64}, "does not match"),
    ],
)
def test_missing_or_wrong_signatures_are_refused(headers: dict[str, str], message: str) -> None:
    with pytest.raises(AuthenticationFailed, match=message):
        provider.authenticate(headers, b"{}", WebhookCredential(secret=SECRET))


def test_real_workflow_run_completed_payload_is_normalised() -> None:
    # Given GitHub's published workflow_run.completed example (its workflow name is empty)
    body = github_fixture("workflow_run.completed.payload.json")
    # When it is parsed
    event = provider.parse(_headers(body, "workflow_run"), body)
    # Then every field a route matches on is filled from the payload
    assert event == CiEvent(
        provider="github",
        event="workflow_run",
        delivery_key="72d3162e-cc78-11e3-81ab-4c9367dc0958",
        repository="octo-org/octo-repo",
        branch="master",
        commit_sha="3484a3fb816e0859fd6e1cea078d76385ff50625",
        pipeline_id="289782451",
        pipeline_name="",
        run_number=163,
        run_url="https://github.com/octo-org/octo-repo/actions/runs/289782451",
        outcome="success",
    )


@pytest.mark.parametrize(
    ("fixture", "event", "reason"),
    [
        ("ping.payload.json", "ping", "pong"),
        ("push.payload.json", "push", "only workflow_run"),
        ("workflow_run.requested.payload.json", "workflow_run", "'requested' ignored"),
        ("check_suite.completed.payload.json", "check_suite", "only workflow_run"),
        ("workflow_job.completed.success.with-organization.payload.json", "workflow_job", "only workflow_run"),
        ("deployment_status.payload.json", "deployment_status", "only workflow_run"),
    ],
)
def test_other_real_events_are_ignored_with_a_reason(fixture: str, event: str, reason: str) -> None:
    body = github_fixture(fixture)
    parsed = provider.parse(_headers(body, event), body)
    assert isinstance(parsed, Ignored)
    assert reason in parsed.reason


def test_broken_bodies_are_invalid_and_say_why() -> None:
    with pytest.raises(InvalidPayload, match="not valid JSON"):
        provider.parse(_headers(b"{not json", "workflow_run"), b"{not json")
    body = json.dumps({"action": "completed", "workflow_run": {"id": 1}}).encode()
    with pytest.raises(InvalidPayload, match=r"'repository\.full_name' is missing"):
        provider.parse(_headers(body, "workflow_run"), body)
    with pytest.raises(InvalidPayload, match="X-GitHub-Event"):
        provider.parse({"x-github-delivery": "d"}, b"{}")


def test_event_copies_are_the_vendor_bytes() -> None:
    # The copies under events/ must stay byte-identical to the shared vendor fixtures.
    originals = SHARED_FIXTURES / "github"
    if not originals.is_dir():
        pytest.skip("shared fixtures are not beside this checkout")
    for original in originals.glob("*.json"):
        assert github_fixture(original.name) == original.read_bytes(), original.name
