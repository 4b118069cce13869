"""GitLab merge-request notes (`/projects/:id/merge_requests/:iid/notes`): list (`page`/`per_page` at most
100, `sort`, with `X-Next-Page`, `X-Total` and `Link` headers), create and edit, a body at most 1,000,000
characters, as documented. Any merge request of any project is served."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from testrelay_local.sandbox.messages import MalformedBody, Request, Response

MAX_NOTE = 1_000_000
_AUTHOR = {"id": 1, "username": "testrelay-sandbox", "name": "testrelay sandbox", "state": "active"}


class GitlabNotes:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._ids = itertools.count(9000)
        self.notes: dict[str, dict[str, list[dict[str, Any]]]] = {}
        """project path → merge request iid → notes, oldest first."""
        self.edits: dict[int, int] = {}

    def routes(self) -> list[tuple[str, str, Callable[[Request, dict[str, str]], Response]]]:
        base = "/projects/{project}/merge_requests/{iid}/notes"
        return [("GET", base, self._list), ("POST", base, self._create), ("PUT", base + "/{note_id}", self._update)]

    def _of(self, params: dict[str, str]) -> list[dict[str, Any]]:
        return self.notes.setdefault(unquote(params["project"]), {}).setdefault(params["iid"], [])

    def _stamp(self) -> str:
        return datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    @staticmethod
    def _body(request: Request) -> tuple[str | None, Response | None]:
        body = request.json()
        if not isinstance(body, dict):
            raise MalformedBody("the request body must be a JSON object")
        text = body.get("body")
        if not isinstance(text, str) or not text.strip():
            return None, Response.of_json(400, {"error": "body is missing"})
        if len(text) > MAX_NOTE:
            return None, Response.of_json(
                400, {"message": {"note": [f"is too long (maximum is {MAX_NOTE} characters)"]}}
            )
        return text, None

    def _list(self, request: Request, params: dict[str, str]) -> Response:
        notes = list(self._of(params))
        if request.query.get("sort", "desc") == "desc":
            notes.reverse()
        raw_size, raw_page = request.query.get("per_page", "20"), request.query.get("page", "1")
        size = min(int(raw_size), 100) if raw_size.isdigit() and int(raw_size) > 0 else 20
        page = int(raw_page) if raw_page.isdigit() and int(raw_page) > 0 else 1
        start = (page - 1) * size
        headers = {"X-Page": str(page), "X-Per-Page": str(size), "X-Total": str(len(notes)), "X-Next-Page": ""}
        if start + size < len(notes):
            headers["X-Next-Page"] = str(page + 1)
            path = f"/gitlab/api/v4/projects/{params['project']}/merge_requests/{params['iid']}/notes"
            headers["Link"] = f'<http://{request.header("host")}{path}?page={page + 1}&per_page={size}>; rel="next"'
        return Response.of_json(200, notes[start : start + size], headers)

    def _create(self, request: Request, params: dict[str, str]) -> Response:
        text, refused = self._body(request)
        if refused or text is None:
            return refused or Response.of_json(400, {"error": "body is missing"})
        stamp = self._stamp()
        note = {
            "id": next(self._ids),
            "type": None,
            "body": text,
            "author": dict(_AUTHOR),
            "created_at": stamp,
            "updated_at": stamp,
            "system": False,
            "noteable_type": "MergeRequest",
            "noteable_iid": int(params["iid"]) if params["iid"].isdigit() else params["iid"],
            "resolvable": False,
            "confidential": False,
            "internal": False,
        }
        self._of(params).append(note)
        return Response.of_json(201, note)

    def _update(self, request: Request, params: dict[str, str]) -> Response:
        text, refused = self._body(request)
        if refused or text is None:
            return refused or Response.of_json(400, {"error": "body is missing"})
        for note in self._of(params):
            if str(note["id"]) == params["note_id"]:
                note.update(body=text, updated_at=self._stamp())
                self.edits[note["id"]] = self.edits.get(note["id"], 0) + 1
                return Response.of_json(200, note)
        return Response.of_json(404, {"message": "404 Not found"})

    def snapshot(self) -> dict[str, Any]:
        return {
            project: {iid: [{**n, "edits": self.edits.get(n["id"], 0)} for n in notes] for iid, notes in by_iid.items()}
            for project, by_iid in self.notes.items()
        }
