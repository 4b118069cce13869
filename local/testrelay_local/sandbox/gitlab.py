"""GitLab external commit statuses (`/gitlab/api/v4`): create and list, with GitLab's state machine;
merge-request notes (testrelay_local.sandbox.gitlab_notes).

Any project (numeric id or URL-encoded path) is served. A status is identified by its project,
commit, name and ref; a state it cannot move to (e.g. `success` again) is refused with GitLab's
400 "Cannot transition status via :<event> from :<state>", and a finished status followed by a
pending or running one starts a new status, as GitLab retries a job.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from testrelay_local.sandbox.gitlab_notes import GitlabNotes
from testrelay_local.sandbox.messages import MalformedBody, Request, Response
from testrelay_local.sandbox.seed import SandboxSeed
from testrelay_local.sandbox.vendor import VendorApi

# Requested state -> the state machine event GitLab names in its refusals.
EVENTS = {"pending": "enqueue", "running": "run", "success": "success", "failed": "drop", "canceled": "cancel"}
FINISHED = frozenset({"success", "failed", "canceled"})
# Which current states each requested state may come from.
ALLOWED_FROM = {
    "pending": frozenset({"created"}),
    "running": frozenset({"created", "pending"}),
    "success": frozenset({"created", "pending", "running"}),
    "failed": frozenset({"created", "pending", "running"}),
    "canceled": frozenset({"created", "pending", "running"}),
}
MAX_TEXT = 255
_SHA = re.compile(r"^[0-9a-f]{40}$")
_AUTHOR = {"id": 1, "username": "testrelay-sandbox", "name": "testrelay sandbox", "state": "active"}


class GitlabApi(VendorApi):
    name = "gitlab"
    prefix = "/gitlab/api/v4"

    def __init__(self, seed: SandboxSeed, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._seed = seed
        self._clock = clock
        self._ids = itertools.count(1)
        self._statuses: dict[str, dict[str, list[dict[str, Any]]]] = {}
        """project path → sha → statuses, oldest first."""
        self.router.add("POST", "/projects/{project}/statuses/{sha}", self._create)
        self.router.add("GET", "/projects/{project}/repository/commits/{sha}/statuses", self._list)
        self.mr_notes = GitlabNotes(clock)
        for method, template, handler in self.mr_notes.routes():
            self.router.add(method, template, handler)

    def authorized(self, request: Request) -> bool:
        token = request.header("private-token") or request.credentials("Bearer")
        return token == self._seed.gitlab_token

    def error(self, status: int, message: str) -> Response:
        return Response.of_json(status, {"message": message})

    def unauthorized(self) -> Response:
        return self.error(401, "401 Unauthorized")

    def malformed(self, message: str) -> Response:
        return Response.of_json(400, {"error": message})

    def _create(self, request: Request, params: dict[str, str]) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise MalformedBody("the request body must be a JSON object")
        state = body.get("state")
        if state not in EVENTS:
            return Response.of_json(400, {"error": "state does not have a valid value"})
        for field in ("name", "context", "ref", "target_url", "description"):
            value = body.get(field)
            if value is not None and not isinstance(value, str):
                return Response.of_json(400, {"error": f"{field} is invalid"})
            if isinstance(value, str) and field in ("target_url", "description") and len(value) > MAX_TEXT:
                return Response.of_json(400, {"message": {field: [f"is too long (maximum is {MAX_TEXT} characters)"]}})
        sha = params["sha"].lower()
        if not _SHA.match(sha):
            return self.error(404, "404 Commit Not Found")
        project = unquote(params["project"])
        name = body.get("name") or body.get("context") or "default"
        ref = body.get("ref")
        statuses = self._statuses.setdefault(project, {}).setdefault(sha, [])
        current = next((s for s in reversed(statuses) if s["name"] == name and s["ref"] == ref), None)
        stamp = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if current is not None and not (current["status"] in FINISHED and state not in FINISHED):
            if current["status"] not in ALLOWED_FROM[state]:
                return self.error(
                    400,
                    f"Cannot transition status via :{EVENTS[state]} from :{current['status']} "
                    f'(Reason(s): Status cannot transition via "{EVENTS[state]}")',
                )
            current.update(self._fields(body, state, stamp))
            return Response.of_json(201, current)
        status = {
            "id": next(self._ids),
            "sha": sha,
            "ref": ref,
            "name": name,
            "created_at": stamp,
            "author": dict(_AUTHOR),
            "allow_failure": False,
            "coverage": None,
            "pipeline_id": body.get("pipeline_id"),
            **self._fields(body, state, stamp),
        }
        statuses.append(status)
        return Response.of_json(201, status)

    @staticmethod
    def _fields(body: dict[str, Any], state: str, stamp: str) -> dict[str, Any]:
        return {
            "status": state,
            "target_url": body.get("target_url"),
            "description": body.get("description"),
            "started_at": stamp if state != "pending" else None,
            "finished_at": stamp if state in FINISHED else None,
        }

    def _list(self, request: Request, params: dict[str, str]) -> Response:
        project = unquote(params["project"])
        statuses = self._statuses.get(project, {}).get(params["sha"].lower(), [])
        return Response.of_json(200, list(reversed(statuses)))

    def snapshot(self) -> dict[str, Any]:
        return {
            "statuses": {
                project: {sha: list(reversed(statuses)) for sha, statuses in by_sha.items()}
                for project, by_sha in self._statuses.items()
            },
            "merge_request_notes": self.mr_notes.snapshot(),
        }
