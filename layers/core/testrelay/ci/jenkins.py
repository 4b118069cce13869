"""Jenkins Notification plugin: one delivery per build phase, authenticated by HTTP Basic (the plugin
turns `https://user:password@host/...` into an Authorization header) or a token; it signs nothing.

A finished build is announced twice, COMPLETED then FINALIZED. testrelay acts on COMPLETED (the
result is known and it comes first) and ignores FINALIZED, so one build starts one job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from testrelay.ci.base import (
    Ignored,
    WebhookCredential,
    identifier,
    integer,
    load_json_object,
    scm_path,
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
        name = identifier(payload, "name")
        number = integer(build, "number")
        if number is None:
            raise InvalidPayload("field 'build.number' is missing")
        status = text(build, "status")
        job_path = _job_path(payload, build, name)
        return CiEvent(
            provider=self.name,
            event="build",
            # The plugin has no delivery id. The build's URL names it: `name` is the short name, the
            # same (`main`) for every multibranch or folder job of that branch name.
            delivery_key=f"{text(build, 'full_url') or job_path + '#' + str(number)}:{phase}",
            repository=_repository(build) or job_path,
            branch=strip_ref(text(build, "scm.branch", "parameters.BRANCH_NAME", "parameters.GIT_BRANCH")),
            commit_sha=text(build, "scm.commit", "parameters.GIT_COMMIT"),
            pipeline_id=f"{job_path}#{number}",
            pipeline_name=name,
            run_number=number,
            run_url=text(build, "full_url"),
            outcome=normalise(STATUSES, status) if status else None,
        )


def _job_path(payload: Mapping[str, Any], build: Mapping[str, Any], name: str) -> str:
    """The job's full name from its URL (`job/shop/job/main/` -> `shop/main`), else its short name."""
    url = text(payload, "url") or (text(build, "url") or "").rstrip("/").rpartition("/")[0]
    parts = [part for part in url.strip("/").split("/") if part]
    names = [unquote(part) for kind, part in zip(parts[::2], parts[1::2], strict=False) if kind == "job"]
    return "/".join(names) or name


def _repository(build: Mapping[str, Any]) -> str | None:
    return scm_path(text(build, "scm.url"))
