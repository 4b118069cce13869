"""Bitbucket Cloud: commit status created/updated webhooks, signed with HMAC-SHA256 (X-Hub-Signature).

Bitbucket may send a retry under a new X-Request-UUID, so the dedupe key is derived from the body:
repository, commit, status key, state and the status's `updated_on`, which a retry repeats and a
new update of the status changes.
"""

from __future__ import annotations

from collections.abc import Mapping

from testrelay.ci.base import (
    Ignored,
    WebhookCredential,
    body_digest,
    identifier,
    load_json_object,
    require,
    text,
    verify_hmac_sha256,
)
from testrelay.ci.outcomes import normalise
from testrelay.errors import InvalidPayload
from testrelay.models.ci_event import CiEvent

EVENTS = ("repo:commit_status_created", "repo:commit_status_updated")
STATES = {"successful": "success", "failed": "failure", "stopped": "cancelled"}
# testrelay's own build statuses come back as commit status events; they must not start runs.
OWN_KEY_PREFIX = "testrelay-"


class BitbucketProvider:
    name = "bitbucket"
    invalid_payload_status = 400

    def authenticate(self, headers: Mapping[str, str], body: bytes, credential: WebhookCredential) -> None:
        verify_hmac_sha256(credential.require_secret(self.name), body, headers.get("x-hub-signature"), prefix="sha256=")

    def parse(self, headers: Mapping[str, str], body: bytes) -> CiEvent | Ignored:
        event = headers.get("x-event-key")
        if not event:
            raise InvalidPayload("header X-Event-Key is missing")
        payload = load_json_object(body)
        if event not in EVENTS:
            return Ignored(
                reason=f"Bitbucket event {event!r} does not start test runs (only {', '.join(EVENTS)})", event=event
            )
        status = require(payload, "commit_status")
        if not isinstance(status, Mapping):
            raise InvalidPayload("field 'commit_status' must be an object")
        state = identifier(status, "state")
        key = text(status, "key") or ""
        if state.lower() not in STATES:
            return Ignored(reason=f"commit status state {state!r} is not finished", event=event)
        if key.startswith(OWN_KEY_PREFIX):
            return Ignored(reason=f"status {key!r} is testrelay's own", event=event)
        repository = identifier(payload, "repository.full_name")
        sha = text(status, "commit.hash") or _sha_from_link(text(status, "links.commit.href"))
        return CiEvent(
            provider=self.name,
            event=event,
            delivery_key=body_digest(
                # The status's URL names the build: two builds of one commit under one key differ there.
                text(payload, "repository.uuid") or repository,
                sha,
                key,
                state,
                text(status, "updated_on"),
                text(status, "url"),
            ),
            repository=repository,
            branch=text(status, "refname"),
            commit_sha=sha,
            pipeline_id=key or None,
            pipeline_name=text(status, "name") or "",
            run_url=text(status, "url"),
            outcome=normalise(STATES, state),
        )


def _sha_from_link(href: str | None) -> str | None:
    """`.../repositories/{workspace}/{repo}/commit/{sha}` -> sha."""
    if not href or "/commit/" not in href:
        return None
    return href.rsplit("/commit/", 1)[1].split("/")[0] or None
