"""Azure DevOps service hooks (Web Hooks): build.complete, authenticated by the HTTP Basic credentials
or the header secret set on the subscription (Azure signs nothing).

Two generations of the payload exist: the older one puts the result in `resource.status` and the
ref and commit in `resource.sourceGetVersion` ("LG:refs/heads/main:<sha>"); the newer one has
`resource.result`, `sourceBranch`, `sourceVersion`, `repository` and `_links.web`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from testrelay.ci.base import (
    TAG_PREFIX,
    Ignored,
    WebhookCredential,
    identifier,
    integer,
    load_json_object,
    strip_ref,
    text,
    verify_basic_or_token,
)
from testrelay.ci.outcomes import normalise
from testrelay.errors import InvalidPayload
from testrelay.models.ci_event import CiEvent

EVENT = "build.complete"
RESULTS = {
    "succeeded": "success",
    "partiallysucceeded": "unstable",
    "failed": "failure",
    "canceled": "cancelled",
    "stopped": "cancelled",
}
_MARKDOWN_LINK = re.compile(r"\]\((https?://[^)\s]+)\)")
_PULL_REF = re.compile(r"^refs/pull/(\d+)/(?:merge|head)$")
MAX_PARAMETERS = 64 * 1024
UNFINISHED = {"inprogress", "notstarted", "cancelling", "postponed", "none", "completed"}


class AzureDevOpsProvider:
    name = "azure-devops"
    invalid_payload_status = 400

    def authenticate(self, headers: Mapping[str, str], body: bytes, credential: WebhookCredential) -> None:
        verify_basic_or_token(headers, credential)

    def parse(self, headers: Mapping[str, str], body: bytes) -> CiEvent | Ignored:
        payload = load_json_object(body)
        event = str(payload.get("eventType") or "")
        if event != EVENT:
            return Ignored(reason=f"Azure DevOps event {event!r} does not start test runs (only {EVENT})", event=event)
        resource = payload.get("resource")
        if not isinstance(resource, Mapping):
            raise InvalidPayload("field 'resource' is missing")
        status = text(resource, "result", "status") or ""
        if status.lower() in UNFINISHED:
            return Ignored(reason=f"build status {status!r} is not a finished result", event=event)
        ref, sha = _source_version(resource)
        ref = text(resource, "sourceBranch") or ref
        pull = _PULL_REF.match(ref or "")
        tag = ref[len(TAG_PREFIX) :] if ref and ref.startswith(TAG_PREFIX) else None
        pull_request = None
        if pull or text(resource, "reason") == "pullRequest":
            # The merge ref is no branch of the repository; the PR's source branch is in triggerInfo
            # (or, older, in the `parameters` JSON string).
            pull_request = _trigger_info(resource, "pr.number") or (pull.group(1) if pull else None)
            branch = strip_ref(
                _trigger_info(resource, "pr.sourceBranch") or _parameter(resource, "system.pullRequest.sourceBranch")
            )
        else:
            branch = None if tag else strip_ref(ref)
        return CiEvent(
            provider=self.name,
            event=event,
            delivery_key=identifier(payload, "id"),
            repository=_repository(payload, resource),
            branch=branch,
            tag=tag,
            pull_request=pull_request,
            fork=(_trigger_info(resource, "pr.isFork") or "").lower() == "true",
            commit_sha=text(resource, "sourceVersion") or sha,
            pipeline_id=text(resource, "id"),
            pipeline_name=text(resource, "definition.name") or "",
            run_number=integer(resource, "id"),
            run_url=text(resource, "_links.web.href") or _message_link(payload) or text(resource, "url"),
            outcome=normalise(RESULTS, status) if status else None,
        )


def _trigger_info(resource: Mapping[str, Any], key: str) -> str | None:
    # Keys such as "pr.sourceBranch" contain dots, so no dotted path can reach them.
    info = resource.get("triggerInfo")
    value = info.get(key) if isinstance(info, Mapping) else None
    return value if isinstance(value, str) and value else None


def _parameter(resource: Mapping[str, Any], key: str) -> str | None:
    """A value of `resource.parameters`, a JSON object serialised as a string."""
    raw = resource.get("parameters")
    try:
        parameters = json.loads(raw) if isinstance(raw, str) and len(raw) <= MAX_PARAMETERS else None
    except (ValueError, RecursionError):
        return None
    value = parameters.get(key) if isinstance(parameters, dict) else None
    return value if isinstance(value, str) and value else None


def _message_link(payload: Mapping[str, Any]) -> str | None:
    """Older payloads link the build's web page only from the message: "Build [name](https://...)"."""
    found = _MARKDOWN_LINK.search(text(payload, "message.markdown") or "")
    return found.group(1) if found else None


def _source_version(resource: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """`LG:refs/heads/master:600c52d...` (older payloads) -> ("refs/heads/master", "600c52d...")."""
    value = text(resource, "sourceGetVersion")
    if not value or value.count(":") < 2:
        return None, None
    _, ref, sha = value.split(":", 2)
    return ref or None, sha or None


def _repository(payload: Mapping[str, Any], resource: Mapping[str, Any]) -> str:
    # Newer payloads name the repository (GitHub repositories by "org/repo"); older ones only the
    # project, by name or (XAML builds) by id.
    found = text(
        resource,
        "repository.name",
        "repository.id",
        "project.name",
        "definition.project.name",
    ) or text(payload, "resourceContainers.project.id")
    if not found:
        raise InvalidPayload("field 'resource.repository' is missing")
    return found
