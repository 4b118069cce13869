"""Bitbucket Cloud build statuses (`/bitbucket/2.0`): create (the same key overwrites), get and list;
Code Insights reports and annotations (testrelay_local.sandbox.bitbucket_reports).

Any repository is served; credentials are HTTP Basic with the seed's username and app password.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from testrelay_local.sandbox.bitbucket_reports import BitbucketReports
from testrelay_local.sandbox.messages import MalformedBody, Request, Response
from testrelay_local.sandbox.seed import SandboxSeed
from testrelay_local.sandbox.vendor import VendorApi

STATES = ("INPROGRESS", "SUCCESSFUL", "FAILED", "STOPPED")
REQUIRED = ("key", "state", "url")
MAX_TEXT = 255


class BitbucketApi(VendorApi):
    name = "bitbucket"
    prefix = "/bitbucket/2.0"

    def __init__(self, seed: SandboxSeed, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._seed = seed
        self._clock = clock
        self._statuses: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        """workspace/repo → sha → key → status (insertion order = creation order)."""
        base = "/repositories/{workspace}/{repo}/commit/{sha}/statuses"
        self.router.add("POST", base + "/build", self._create)
        self.router.add("GET", base + "/build/{key}", self._get)
        self.router.add("GET", base, self._list)
        self.reports = BitbucketReports(self.error, lambda: self.behaviour, clock)
        for method, template, handler in self.reports.routes():
            self.router.add(method, template, handler)

    def authorized(self, request: Request) -> bool:
        encoded = request.credentials("Basic")
        if not encoded:
            return False
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return decoded == f"{self._seed.bitbucket_username}:{self._seed.bitbucket_app_password}"

    def error(self, status: int, message: str, fields: dict[str, list[str]] | None = None) -> Response:
        error: dict[str, Any] = {"message": message}
        if fields:
            error["fields"] = fields
        return Response.of_json(status, {"type": "error", "error": error})

    def unauthorized(self) -> Response:
        return self.error(401, "Invalid credentials")

    def _create(self, request: Request, params: dict[str, str]) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise MalformedBody("the request body must be a JSON object")
        fields: dict[str, list[str]] = {}
        for name in REQUIRED:
            if not isinstance(body.get(name), str) or not body[name]:
                fields[name] = ["This field is required."]
        if "state" not in fields and body["state"] not in STATES:
            fields["state"] = [f'"{body["state"]}" is not a valid choice.']
        for name in ("name", "description", "refname"):
            value = body.get(name)
            if value is not None and (not isinstance(value, str) or len(value) > MAX_TEXT):
                fields[name] = [f"Ensure this field is a string of at most {MAX_TEXT} characters."]
        if fields:
            first = next(iter(fields))
            return self.error(400, f"{first}: {fields[first][0]}", fields)
        repo = f"{params['workspace']}/{params['repo']}"
        sha = params["sha"]
        by_key = self._statuses.setdefault(repo, {}).setdefault(sha, {})
        stamp = datetime.fromtimestamp(self._clock(), UTC).isoformat()
        host = f"http://{request.header('host')}{self.prefix}/repositories/{repo}/commit/{sha}"
        existing = by_key.get(body["key"])
        status = {
            "type": "build",
            "uuid": existing["uuid"] if existing else "{" + str(uuid.uuid4()) + "}",
            "key": body["key"],
            "refname": body.get("refname"),
            "url": body["url"],
            "state": body["state"],
            "name": body.get("name"),
            "description": body.get("description"),
            "created_on": existing["created_on"] if existing else stamp,
            "updated_on": stamp,
            "links": {
                "self": {"href": f"{host}/statuses/build/{body['key']}"},
                "commit": {"href": host},
            },
        }
        by_key[body["key"]] = status
        return Response.of_json(201, status)

    def _get(self, request: Request, params: dict[str, str]) -> Response:
        repo = f"{params['workspace']}/{params['repo']}"
        status = self._statuses.get(repo, {}).get(params["sha"], {}).get(params["key"])
        if status is None:
            return self.error(404, f"No status with key {params['key']!r} on this commit")
        return Response.of_json(200, status)

    def _list(self, request: Request, params: dict[str, str]) -> Response:
        repo = f"{params['workspace']}/{params['repo']}"
        values = list(self._statuses.get(repo, {}).get(params["sha"], {}).values())
        return Response.of_json(200, {"pagelen": 10, "size": len(values), "page": 1, "values": values})

    def snapshot(self) -> dict[str, Any]:
        return {
            "statuses": {
                repo: {sha: list(by_key.values()) for sha, by_key in by_sha.items()}
                for repo, by_sha in self._statuses.items()
            },
            "reports": self.reports.snapshot(),
        }
