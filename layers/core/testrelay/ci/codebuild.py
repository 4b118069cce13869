"""AWS CodeBuild "CodeBuild Build State Change" events (EventBridge, default bus), normalised.

CodeBuild signs nothing: the event reaches testrelay through an EventBridge rule of the stack, so
AWS vouches for it. What the event says (CodeBuild user guide, "Build notifications input format
reference"): `detail.build-status` (IN_PROGRESS, SUCCEEDED, FAILED, STOPPED; FAULT and TIMED_OUT as
the API's StatusType), `detail.build-id` (the build ARN), `detail.project-name`, and under
`additional-information`: `build-number`, `initiator` (`codepipeline/<pipeline>` when a pipeline
started it), `source` (`type`, `location`), `source-version` (what was asked for: a commit, a
branch or tag ref, `pr/<n>`, an S3 object version) and, where CodeBuild reports it,
`resolved-source-version` (the commit it really built, the API's `resolvedSourceVersion`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from testrelay.ci.base import TAG_PREFIX, Ignored, integer, scm_path, string, text
from testrelay.ci.outcomes import normalise
from testrelay.errors import InvalidPayload
from testrelay.models.ci_event import CiEvent

SOURCE = "aws.codebuild"
DETAIL_TYPE = "CodeBuild Build State Change"
STATUSES = {
    "succeeded": "success",
    "failed": "failure",
    "fault": "error",
    "stopped": "cancelled",
    "timed_out": "timed_out",
}
# A build ARN: arn:<partition>:codebuild:<region>:<account>:build/<project>:<build uuid>
_BUILD_ARN = re.compile(r"^arn:aws[a-z-]*:codebuild:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):build/(?P<id>[^/]+)$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
# Source types whose location is a Git URL (CODECOMMIT's is https://git-codecommit.<region>.../v1/repos/<name>).
_GIT_SOURCES = ("GITHUB", "GITHUB_ENTERPRISE", "BITBUCKET", "GITLAB", "GITLAB_SELF_MANAGED", "CODECOMMIT")
_CODECOMMIT_REPO = re.compile(r"/v1/repos/(?P<name>[^/?#]+)")


class CodeBuildEvents:
    name = "codebuild"

    def normalise(self, event: Mapping[str, Any]) -> CiEvent | Ignored:
        detail = event.get("detail")
        if not isinstance(detail, Mapping):
            raise InvalidPayload("field 'detail' must be an object")
        status = string(detail, "build-status", required=True) or ""
        if status.upper() == "IN_PROGRESS":
            return Ignored(reason="CodeBuild build is still in progress", event=DETAIL_TYPE)
        build_arn = string(detail, "build-id", required=True) or ""
        project = string(detail, "project-name", required=True) or ""
        info = detail.get("additional-information")
        info = info if isinstance(info, Mapping) else {}
        source = info.get("source")
        source = source if isinstance(source, Mapping) else {}
        requested = text(info, "source-version")
        resolved = text(info, "resolved-source-version")
        branch, tag, pull_request = _ref(requested)
        commit = resolved if resolved and _COMMIT.match(resolved) else None
        if commit is None and requested and _COMMIT.match(requested):
            commit = requested
        initiator = text(info, "initiator") or ""
        return CiEvent(
            provider=self.name,
            event=DETAIL_TYPE,
            # The build ARN names one build, which ends once (a retried build is a new build, a new ARN).
            delivery_key=build_arn,
            repository=_repository(source, project),
            branch=branch,
            tag=tag,
            pull_request=pull_request,
            commit_sha=commit,
            pipeline_id=build_arn,
            pipeline_name=project,
            run_number=whole_number(info.get("build-number")),
            run_url=console_url(build_arn, project),
            outcome=normalise(STATUSES, status),
            # A build a pipeline started names it; the pipeline's own event is the other way in.
            child_pipeline=initiator.startswith("codepipeline/"),
        )


def whole_number(value: Any) -> int | None:
    """A count AWS may send as a JSON float (the published samples carry `"build-number": 55.0`)."""
    if isinstance(value, float) and value.is_integer() and 0 <= value < 2**63:
        return int(value)
    return integer({"value": value}, "value")


def _ref(version: str | None) -> tuple[str | None, str | None, str | None]:
    """(branch, tag, pull request) named by a source version: `refs/heads/x`, `refs/tags/v1`, `pr/12`."""
    if not version:
        return None, None, None
    if version.startswith("refs/heads/"):
        return version[len("refs/heads/") :] or None, None, None
    if version.startswith(TAG_PREFIX):
        return None, version[len(TAG_PREFIX) :] or None, None
    if version.startswith("pr/") and version[3:].isascii() and version[3:].isdigit():
        return None, None, version[3:]
    if version.startswith("refs/pull/"):
        number = version[len("refs/pull/") :].split("/")[0]
        return None, None, number if number.isascii() and number.isdigit() else None
    # A bare commit, an S3 object version, or a branch name as some webhooks give it: only refs are trusted.
    return None, None, None


def _repository(source: Mapping[str, Any], project: str) -> str:
    location = text(source, "location")
    kind = (text(source, "type") or "").upper()
    if location and kind in _GIT_SOURCES:
        found = _CODECOMMIT_REPO.search(location) if kind == "CODECOMMIT" else None
        if found:
            return found.group("name")
        path = scm_path(location)
        if path:
            return path
    # S3, CODEPIPELINE or NO_SOURCE builds name no repository: the project stands for it.
    return project


def console_url(build_arn: str, project: str) -> str | None:
    """The build's page in the CodeBuild console, from the region, account and ids of its ARN."""
    found = _BUILD_ARN.match(build_arn)
    if not found:
        return None
    region, account = found.group("region"), found.group("account")
    return (
        f"https://{region}.console.aws.amazon.com/codesuite/codebuild/{account}/projects/"
        f"{quote(project, safe='')}/build/{quote(found.group('id'), safe='')}/?region={region}"
    )
