"""GitHub webhooks: X-Hub-Signature-256 over the raw body; workflow_run completed starts a job."""

from __future__ import annotations

from collections.abc import Mapping

from testrelay.ci.base import Ignored, WebhookCredential, load_json_object, require, verify_hmac_sha256
from testrelay.errors import InvalidPayload
from testrelay.models.ci_event import CiEvent


class GitHubProvider:
    name = "github"
    invalid_payload_status = 400

    def authenticate(self, headers: Mapping[str, str], body: bytes, credential: WebhookCredential) -> None:
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
        payload = load_json_object(body)
        if event == "ping":
            return Ignored(reason="pong: webhook is configured", event=event)
        if event != "workflow_run":
            return Ignored(reason=f"event {event!r} does not start test runs (only workflow_run)", event=event)
        action = payload.get("action")
        if action != "completed":
            return Ignored(reason=f"workflow_run action {action!r} ignored (only 'completed')", event=event)
        run = require(payload, "workflow_run")
        if not isinstance(run, Mapping):
            raise InvalidPayload("field 'workflow_run' must be an object")
        run_number = run.get("run_number")
        return CiEvent(
            provider=self.name,
            event=event,
            delivery_key=delivery,
            repository=str(require(payload, "repository.full_name")),
            branch=run.get("head_branch"),
            commit_sha=str(require(payload, "workflow_run.head_sha")),
            pipeline_id=str(require(payload, "workflow_run.id")),
            pipeline_name=run.get("name") or "",
            run_number=run_number if isinstance(run_number, int) else None,
            run_url=run.get("html_url"),
            outcome=run.get("conclusion"),
        )
