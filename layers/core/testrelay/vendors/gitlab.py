"""GitLab REST API: external commit statuses (`POST /projects/:id/statuses/:sha`)."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from testrelay.errors import VendorRejected
from testrelay.observability import logger
from testrelay.vendors.http import VendorSession

GitLabState = Literal["pending", "running", "success", "failed", "canceled"]
TEXT_LIMIT = 255


def _short(value: str) -> str:
    return value if len(value) <= TEXT_LIMIT else value[: TEXT_LIMIT - 1] + "…"


class GitLabClient:
    def __init__(self, session: VendorSession) -> None:
        self.http = session

    def create_commit_status(
        self,
        project: str,
        sha: str,
        state: GitLabState,
        name: str,
        description: str,
        target_url: str | None,
        ref: str | None = None,
        pipeline_id: str | None = None,
    ) -> dict[str, Any] | None:
        """`project` is the numeric id or the path with namespace (URL-encoded here)."""
        body: dict[str, Any] = {"state": state, "name": _short(name), "description": _short(description)}
        if target_url:
            body["target_url"] = target_url[:TEXT_LIMIT]
        if ref:
            body["ref"] = ref
        if pipeline_id and pipeline_id.isdigit():
            # Attaches the status to the pipeline that triggered the job instead of a new external one.
            body["pipeline_id"] = int(pipeline_id)
        path = f"/projects/{quote(project, safe='')}/statuses/{sha}"
        try:
            # Repeating is harmless: a status with the same name on the same commit is replaced.
            answer: dict[str, Any] = self.http.request("POST", path, json=body, repeatable=True)
        except VendorRejected as exc:
            # A repeat of a state the status already has is refused with this 400: the status stands.
            if exc.status == 400 and "Cannot transition status" in str(exc):
                logger.info("GitLab commit status already in this state", project=project, sha=sha, state=state)
                return None
            raise
        return answer
