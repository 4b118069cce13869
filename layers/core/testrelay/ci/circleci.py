"""CircleCI outbound webhooks: workflow-completed and job-completed, signed with HMAC-SHA256 (`v1`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from testrelay.ci.base import (
    Ignored,
    WebhookCredential,
    identifier,
    integer,
    load_json_object,
    scm_path,
    text,
    verify_hmac_sha256,
)
from testrelay.ci.outcomes import normalise
from testrelay.errors import AuthenticationFailed, InvalidPayload
from testrelay.models.ci_event import CiEvent

EVENTS = ("workflow-completed", "job-completed")
STATUSES = {
    "success": "success",
    "failed": "failure",
    "error": "error",
    "infrastructure_fail": "error",
    "unauthorized": "error",
    "canceled": "cancelled",
    "not_run": "skipped",
    "timedout": "timed_out",
}
# Project slugs start with the VCS; for GitHub and Bitbucket projects the rest is the org/repo path.
VCS_PREFIXES = ("github/", "gh/", "bitbucket/", "bb/")
# Pipelines of GitLab, GitHub App and Bitbucket Data Center projects have a `circleci/<org id>/<project
# id>` slug; their repository is named only in `pipeline.trigger_parameters`.
NATIVE_PREFIX = "circleci/"
TRIGGER_REPOSITORY_URLS = (
    "pipeline.trigger_parameters.gitlab.web_url",
    "pipeline.trigger_parameters.github_app.repo_url",
    "pipeline.trigger_parameters.git.repo_url",
    "pipeline.trigger_parameters.gitlab.repo_url",
    "pipeline.trigger_parameters.git.checkout_url",
)


class CircleCiProvider:
    name = "circleci"
    invalid_payload_status = 400

    def authenticate(self, headers: Mapping[str, str], body: bytes, credential: WebhookCredential) -> None:
        header = headers.get("circleci-signature")
        if not header:
            raise AuthenticationFailed("header circleci-signature is missing")
        # `v1=<hex>[,v2=...]`: only v1 is defined today; later versions are skipped, not trusted.
        v1 = next((part.strip() for part in header.split(",") if part.strip().startswith("v1=")), None)
        if v1 is None:
            raise AuthenticationFailed("header circleci-signature has no v1 signature")
        verify_hmac_sha256(credential.require_secret(self.name), body, v1, prefix="v1=")

    def parse(self, headers: Mapping[str, str], body: bytes) -> CiEvent | Ignored:
        payload = load_json_object(body)
        event = headers.get("circleci-event-type") or str(payload.get("type") or "")
        if event not in EVENTS:
            return Ignored(
                reason=f"CircleCI event {event!r} does not start test runs (only {', '.join(EVENTS)})", event=event
            )
        workflow = payload.get("workflow") if isinstance(payload.get("workflow"), Mapping) else {}
        if event == "job-completed":
            status = text(payload, "job.status")
            name = text(payload, "job.name") or ""
            job_number = text(payload, "job.number")
            url = text(workflow, "url")
            run_url = f"{url}/jobs/{job_number}" if url and job_number else url
        else:
            status = text(payload, "workflow.status")
            name = text(workflow, "name") or ""
            run_url = text(workflow, "url")
        return CiEvent(
            provider=self.name,
            event=event,
            delivery_key=identifier(payload, "id"),
            repository=_repository(payload),
            # Two shapes: `pipeline.vcs` for GitHub/Bitbucket projects, `trigger_parameters.git` for the others.
            branch=text(payload, "pipeline.vcs.branch", "pipeline.trigger_parameters.git.branch"),
            tag=text(payload, "pipeline.vcs.tag", "pipeline.trigger_parameters.git.tag"),
            commit_sha=text(payload, "pipeline.vcs.revision", "pipeline.trigger_parameters.git.checkout_sha"),
            pipeline_id=text(workflow, "id"),
            pipeline_name=name,
            run_number=integer(payload, "pipeline.number"),
            run_url=run_url,
            outcome=normalise(STATUSES, status) if status else None,
        )


def _repository(payload: Mapping[str, Any]) -> str:
    slug = text(payload, "project.slug")
    if not slug:
        raise InvalidPayload("field 'project.slug' is missing")
    for prefix in VCS_PREFIXES:
        if slug.startswith(prefix):
            return slug[len(prefix) :]
    if slug.startswith(NATIVE_PREFIX):
        for path in TRIGGER_REPOSITORY_URLS:
            repository = scm_path(text(payload, path))
            if repository:
                return repository
    return slug
