"""GitHub webhooks: X-Hub-Signature-256 over the raw body; workflow_run completed starts a job."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from testrelay.ci.base import (
    Ignored,
    WebhookCredential,
    identifier,
    load_json_object,
    string,
    verify_hmac_sha256,
)
from testrelay.ci.outcomes import normalise
from testrelay.errors import InvalidPayload
from testrelay.models.ci_event import CiEvent

# GitHub's check conclusions; all but startup_failure (the workflow file could not start) are words
# of the outcome vocabulary already.
CONCLUSIONS = {
    "success": "success",
    "failure": "failure",
    "neutral": "neutral",
    "cancelled": "cancelled",
    "skipped": "skipped",
    "timed_out": "timed_out",
    "action_required": "action_required",
    "stale": "stale",
    "startup_failure": "error",
}
FORM = "application/x-www-form-urlencoded"


class GitHubProvider:
    name = "github"
    invalid_payload_status = 400

    def authenticate(self, headers: Mapping[str, str], body: bytes, credential: WebhookCredential) -> None:
        # The signature covers the raw body whatever the content type, form-encoded included.
        verify_hmac_sha256(
            credential.require_secret(self.name), body, headers.get("x-hub-signature-256"), prefix="sha256="
        )

    def parse(self, headers: Mapping[str, str], body: bytes) -> CiEvent | Ignored:
        event = headers.get("x-github-event")
        if not event:
            raise InvalidPayload("header X-GitHub-Event is missing")
        delivery = headers.get("x-github-delivery")
        if not delivery:
            raise InvalidPayload("header X-GitHub-Delivery is missing")
        payload = load_json_object(_json_body(headers, body))
        if event == "ping":
            return Ignored(reason="pong: webhook is configured", event=event)
        if event != "workflow_run":
            return Ignored(reason=f"event {event!r} does not start test runs (only workflow_run)", event=event)
        action = payload.get("action")
        if action != "completed":
            return Ignored(reason=f"workflow_run action {action!r} ignored (only 'completed')", event=event)
        run = payload.get("workflow_run")
        if not isinstance(run, Mapping):
            raise InvalidPayload("field 'workflow_run' must be an object")
        repository = string(payload, "repository.full_name", required=True)
        # A pull request from a fork runs the fork's code under the fork's branch names; its
        # `pull_requests` list is empty, so `head_repository` is the only sign of it.
        head_repository = string(payload, "workflow_run.head_repository.full_name")
        fork = head_repository is not None and head_repository != repository
        conclusion = string(payload, "workflow_run.conclusion")
        run_number = run.get("run_number")
        if run_number is not None and (isinstance(run_number, bool) or not isinstance(run_number, int)):
            raise InvalidPayload("field 'workflow_run.run_number' must be a number")
        return CiEvent(
            provider=self.name,
            event=event,
            delivery_key=delivery,
            repository=repository,
            branch=string(payload, "workflow_run.head_branch"),
            pull_request=_pull_request(run),
            fork=fork,
            head_repository=head_repository if fork else None,
            commit_sha=string(payload, "workflow_run.head_sha", required=True),
            pipeline_id=identifier(payload, "workflow_run.id"),
            pipeline_name=string(payload, "workflow_run.name") or "",
            run_number=run_number,
            run_url=string(payload, "workflow_run.html_url"),
            outcome=normalise(CONCLUSIONS, conclusion) if conclusion else None,
        )


def _json_body(headers: Mapping[str, str], body: bytes) -> bytes:
    """The JSON of the delivery: the body itself, or its `payload` field when the hook's content
    type is application/x-www-form-urlencoded (a choice GitHub's settings page offers)."""
    if not (headers.get("content-type") or "").lower().startswith(FORM):
        return body
    try:
        fields = parse_qs(body.decode("ascii"), strict_parsing=True, max_num_fields=10)
    except ValueError as exc:  # not ASCII, a malformed field, too many fields; the text is not echoed
        raise InvalidPayload(f"form body does not parse as {FORM} with one 'payload' field") from exc
    values = fields.get("payload") or []
    if len(values) != 1:
        raise InvalidPayload(f"form body ({FORM}) must hold exactly one 'payload' field")
    return values[0].encode("utf-8")


def _pull_request(run: Mapping[str, Any]) -> str | None:
    """The number of the pull request the run was for, when GitHub names one (never for forks)."""
    pulls = run.get("pull_requests")
    for pull in pulls if isinstance(pulls, list) else []:
        number = pull.get("number") if isinstance(pull, Mapping) else None
        if isinstance(number, int) and not isinstance(number, bool):
            return str(number)
    return None
