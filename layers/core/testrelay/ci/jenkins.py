"""Jenkins Notification plugin: one delivery per build phase, authenticated by HTTP Basic (the plugin
turns `https://user:password@host/...` into an Authorization header) or a token; it signs nothing.

A finished build is announced twice, COMPLETED then FINALIZED. testrelay acts on COMPLETED (the
result is known and it comes first) and ignores FINALIZED, so one build starts one job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from testrelay.ci.base import (
    Ignored,
    WebhookCredential,
    integer,
    load_json_object,
    require,
    strip_ref,
    text,
    verify_basic_or_token,
)
from testrelay.ci.outcomes import normalise
from testrelay.errors import InvalidPayload
from testrelay.models.ci_event import CiEvent

ACTED_ON = "COMPLETED"
STATUSES = {
    "success": "success",
    "unstable": "unstable",
    "failure": "failure",
    "aborted": "cancelled",
    "not_built": "skipped",
}
# https://host/org/repo(.git), ssh://git@host/org/repo.git or git@host:org/repo.git
_SCM_PATH = re.compile(r"^(?:[a-z+]+://[^/]+/|[^@/]+@[^:/]+:)(?P<path>.+?)(?:\.git)?/?$")


class JenkinsProvider:
    name = "jenkins"
    invalid_payload_status = 400

    def authenticate(self, headers: Mapping[str, str], body: bytes, credential: WebhookCredential) -> None:
        verify_basic_or_token(headers, credential)

    def parse(self, headers: Mapping[str, str], body: bytes) -> CiEvent | Ignored:
        payload = load_json_object(body)
        build = payload.get("build")
        if not isinstance(build, Mapping):
            raise InvalidPayload("field 'build' is missing")
        phase = str(build.get("phase") or "").upper()
        if phase == "FINALIZED":
            return Ignored(
                reason="phase FINALIZED repeats COMPLETED for the same build; testrelay acts on COMPLETED",
                event="build",
            )
        if phase != ACTED_ON:
            return Ignored(reason=f"phase {phase or None!r} ignored (testrelay acts on COMPLETED)", event="build")
        name = str(require(payload, "name"))
        number = integer(build, "number")
        if number is None:
            raise InvalidPayload("field 'build.number' is missing")
        status = text(build, "status")
        return CiEvent(
            provider=self.name,
            event="build",
            # The plugin has no delivery id: job, build number and phase name the delivery.
            delivery_key=f"{name}#{number}:{phase}",
            repository=_repository(build) or name,
            branch=strip_ref(text(build, "scm.branch", "parameters.BRANCH_NAME", "parameters.GIT_BRANCH")),
            commit_sha=text(build, "scm.commit", "parameters.GIT_COMMIT"),
            pipeline_id=f"{name}#{number}",
            pipeline_name=name,
            run_number=number,
            run_url=text(build, "full_url"),
            outcome=normalise(STATUSES, status) if status else None,
        )


def _repository(build: Mapping[str, Any]) -> str | None:
    url = text(build, "scm.url")
    found = _SCM_PATH.match(url) if url else None
    return found.group("path") if found else None
