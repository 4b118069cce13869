"""GitLab webhooks: pipeline and job hooks, authenticated by the X-Gitlab-Token shared secret.

GitLab disables a hook for good after four 4xx answers in a row, so a body that does not parse is
answered 200 "ignored" (and logged): only a wrong token (401) is a 4xx.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from testrelay.ci.base import (
    Ignored,
    WebhookCredential,
    body_digest,
    integer,
    load_json_object,
    text,
    verify_token,
)
from testrelay.ci.outcomes import normalise
from testrelay.errors import InvalidPayload
from testrelay.models.ci_event import CiEvent

FINISHED = {"success": "success", "failed": "failure", "canceled": "cancelled", "skipped": "skipped"}
# The name testrelay gives its own commit statuses; GitLab reports them back as jobs.
OWN_STATUS_PREFIX = "testrelay/"


class GitLabProvider:
    name = "gitlab"
    invalid_payload_status = 200

    def authenticate(self, headers: Mapping[str, str], body: bytes, credential: WebhookCredential) -> None:
        verify_token(credential.require_secret(self.name), headers.get("x-gitlab-token"), "X-Gitlab-Token")

    def parse(self, headers: Mapping[str, str], body: bytes) -> CiEvent | Ignored:
        payload = load_json_object(body)
        kind = payload.get("object_kind")
        if kind is None:
            # Every GitLab hook body names its kind; an empty one (`{}`) is not a GitLab event at all.
            raise InvalidPayload("field 'object_kind' is missing: the body is not a GitLab webhook event")
        if kind == "pipeline":
            return self._pipeline(headers, body, payload)
        if kind == "build":
            return self._job(headers, body, payload)
        event = headers.get("x-gitlab-event") or str(kind)
        return Ignored(
            reason=f"GitLab event {event!r} does not start test runs (only Pipeline Hook, Job Hook)", event=event
        )

    @staticmethod
    def _delivery_key(headers: Mapping[str, str], body: bytes) -> str:
        # Idempotency-Key (GitLab 17.4+) survives retries; the event UUID identifies one event.
        return headers.get("idempotency-key") or headers.get("x-gitlab-event-uuid") or body_digest("gitlab", body)

    def _pipeline(self, headers: Mapping[str, str], body: bytes, payload: dict[str, Any]) -> CiEvent | Ignored:
        attributes = payload.get("object_attributes")
        if not isinstance(attributes, Mapping):
            raise InvalidPayload("field 'object_attributes' is missing")
        status = text(attributes, "status") or ""
        if status not in FINISHED:
            return Ignored(
                reason=f"pipeline status {status!r} is not finished (acts on {', '.join(FINISHED)})", event="pipeline"
            )
        if attributes.get("source") == "external":
            return Ignored(
                reason="pipelines of external commit statuses (like testrelay's own) do not start test runs",
                event="pipeline",
            )
        tag = attributes.get("tag") is True
        ref = text(attributes, "ref")
        return CiEvent(
            provider=self.name,
            event="pipeline",
            delivery_key=self._delivery_key(headers, body),
            repository=_repository(payload),
            branch=None if tag else ref,
            tag=ref if tag else None,
            pull_request=text(payload, "merge_request.iid"),
            # A child pipeline (trigger:include) runs for the same commit as its parent, whose own
            # hook already reports it: routes opt in with `match.child_pipelines`.
            child_pipeline=attributes.get("source") == "parent_pipeline",
            commit_sha=text(attributes, "sha") or text(payload, "commit.id"),
            pipeline_id=text(attributes, "id"),
            pipeline_name=text(attributes, "name") or "",
            run_number=integer(attributes, "iid"),
            run_url=text(attributes, "url"),
            outcome=normalise(FINISHED, status),
        )

    def _job(self, headers: Mapping[str, str], body: bytes, payload: dict[str, Any]) -> CiEvent | Ignored:
        status = text(payload, "build_status") or ""
        name = text(payload, "build_name") or ""
        if status not in FINISHED:
            return Ignored(reason=f"job status {status!r} is not finished (acts on {', '.join(FINISHED)})", event="job")
        if name.startswith(OWN_STATUS_PREFIX):
            return Ignored(reason=f"job {name!r} is a testrelay commit status", event="job")
        repository = _repository(payload)
        homepage = text(payload, "repository.homepage", "project.web_url")
        job_id = text(payload, "build_id")
        return CiEvent(
            provider=self.name,
            event="job",
            delivery_key=self._delivery_key(headers, body),
            repository=repository,
            branch=None if payload.get("tag") is True else text(payload, "ref"),
            tag=text(payload, "ref") if payload.get("tag") is True else None,
            # A job's `commit.id` is its pipeline's id, not a commit: the sha is `sha` (or `commit.sha`).
            commit_sha=text(payload, "sha", "commit.sha"),
            pipeline_id=text(payload, "pipeline_id"),
            pipeline_name=name,
            run_number=integer(payload, "build_id"),
            run_url=f"{homepage}/-/jobs/{job_id}" if homepage and job_id else None,
            outcome=normalise(FINISHED, status),
        )


def _repository(payload: Mapping[str, Any]) -> str:
    path = text(payload, "project.path_with_namespace")
    if path:
        return path
    homepage = text(payload, "repository.homepage", "project.web_url")
    if homepage and urlsplit(homepage).path.strip("/"):
        return urlsplit(homepage).path.strip("/")
    raise InvalidPayload("field 'project.path_with_namespace' is missing")
