"""GitLab REST API: external commit statuses (`POST /projects/:id/statuses/:sha`) and merge-request notes."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

from testrelay.errors import VendorRejected
from testrelay.observability import logger
from testrelay.vendors.http import VendorSession

GitLabState = Literal["pending", "running", "success", "failed", "canceled"]
TEXT_LIMIT = 255
NOTE_LIMIT = 1_000_000
"""A note's body, in characters (GitLab refuses longer ones)."""
PAGE_SIZE = 100
MAX_PAGES = 100


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

    def merge_request_notes(self, project: str, iid: str) -> list[dict[str, Any]]:
        """Every note of the merge request, oldest first, 100 a page (`page` until a short page)."""
        path = f"/projects/{quote(project, safe='')}/merge_requests/{quote(iid, safe='')}/notes"
        found: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            answer = self.http.request(
                "GET", path, params={"per_page": PAGE_SIZE, "page": page, "sort": "asc", "order_by": "created_at"}
            )
            if not isinstance(answer, list):
                break
            found += [note for note in answer if isinstance(note, dict)]
            if len(answer) < PAGE_SIZE:
                break
        return found

    def create_merge_request_note(self, project: str, iid: str, body: str) -> dict[str, Any]:
        path = f"/projects/{quote(project, safe='')}/merge_requests/{quote(iid, safe='')}/notes"
        answer: dict[str, Any] = self.http.request("POST", path, json={"body": body})
        return answer

    def update_merge_request_note(self, project: str, iid: str, note_id: int, body: str) -> dict[str, Any]:
        path = f"/projects/{quote(project, safe='')}/merge_requests/{quote(iid, safe='')}/notes/{note_id}"
        answer: dict[str, Any] = self.http.request("PUT", path, json={"body": body})
        return answer
