"""GitHub (`/github`): commit statuses (create, list, the combined status of a ref); the App's
installation tokens, check runs and pull-request comments (testrelay_local.sandbox.github_checks)."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from testrelay_local.sandbox.github_app import GithubAppAuth
from testrelay_local.sandbox.github_checks import GithubChecks
from testrelay_local.sandbox.messages import MalformedBody, Request, Response
from testrelay_local.sandbox.seed import SandboxSeed
from testrelay_local.sandbox.vendor import VendorApi

STATES = ("error", "failure", "pending", "success")
MAX_DESCRIPTION = 140
DOCS_URL = "https://docs.github.com/rest/commits/statuses"
_SHA = re.compile(r"^[0-9a-fA-F]{40}$")
_CREATOR = {"login": "testrelay-sandbox[bot]", "id": 1, "type": "Bot"}


class GithubApi(VendorApi):
    name = "github"
    prefix = "/github"

    def __init__(self, seed: SandboxSeed, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._seed = seed
        self._clock = clock
        self._ids = itertools.count(1)
        self._statuses: dict[str, dict[str, list[dict[str, Any]]]] = {}
        """repo full name → sha → statuses, oldest first."""
        self.router.add("POST", "/repos/{owner}/{repo}/statuses/{sha}", self._create)
        self.router.add("GET", "/repos/{owner}/{repo}/commits/{ref}/statuses", self._list)
        self.router.add("GET", "/repos/{owner}/{repo}/statuses/{ref}", self._list)
        self.router.add("GET", "/repos/{owner}/{repo}/commits/{ref}/status", self._combined)
        self.app = GithubAppAuth(
            seed.github_app_id,
            seed.github_app_private_key,
            seed.github_app_installation_id,
            seed.github_app_token_lifetime_s,
            clock,
        )
        self.checks = GithubChecks(
            self.app, lambda request: self.app.kind(request, seed.github_token), clock, seed.github_app_repositories
        )
        for method, template, handler in self.checks.routes():
            self.router.add(method, template, handler)

    def authorized(self, request: Request) -> bool:
        """The personal token, an unexpired installation token or the App's JWT; each endpoint then
        takes only what GitHub documents for it."""
        return self.app.kind(request, self._seed.github_token) is not None

    def error(self, status: int, message: str) -> Response:
        return Response.of_json(status, {"message": message, "documentation_url": DOCS_URL})

    def unauthorized(self) -> Response:
        return self.error(401, "Bad credentials")

    def malformed(self, message: str) -> Response:
        return self.error(400, f"Problems parsing JSON: {message}")

    def throttled(self) -> Response:
        response = self.error(429, "You have exceeded a secondary rate limit. Please wait a few minutes.")
        response.headers["Retry-After"] = "1"
        return response

    def server_error(self) -> Response:
        return Response.of_text(502, "Bad Gateway")

    def _create(self, request: Request, params: dict[str, str]) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise MalformedBody("the request body must be a JSON object")
        errors: list[dict[str, str]] = []

        def invalid(field: str, message: str) -> None:
            errors.append({"resource": "Status", "code": "custom", "field": field, "message": message})

        state = body.get("state")
        if state not in STATES:
            invalid("state", f"state is not included in the list ({', '.join(STATES)})")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            invalid("description", "description must be a string")
        elif description is not None and len(description) > MAX_DESCRIPTION:
            invalid("description", f"description is too long (maximum is {MAX_DESCRIPTION} characters)")
        for name in ("target_url", "context"):
            if body.get(name) is not None and not isinstance(body[name], str):
                invalid(name, f"{name} must be a string")
        if not _SHA.match(params["sha"]):
            invalid("sha", "sha must be a 40-character hexadecimal commit id")
        if errors:
            return Response.of_json(
                422, {"message": "Validation Failed", "errors": errors, "documentation_url": DOCS_URL}
            )
        repo = f"{params['owner']}/{params['repo']}"
        sha = params["sha"].lower()
        status_id = next(self._ids)
        stamp = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = {
            "url": f"http://{request.header('host')}{self.prefix}/repos/{repo}/statuses/{sha}",
            "avatar_url": None,
            "id": status_id,
            "node_id": f"SC_sandbox{status_id}",
            "state": state,
            "description": description,
            "target_url": body.get("target_url"),
            "context": body.get("context") or "default",
            "created_at": stamp,
            "updated_at": stamp,
            "creator": dict(_CREATOR),
        }
        self._statuses.setdefault(repo, {}).setdefault(sha, []).append(status)
        return Response.of_json(201, status)

    def _newest_first(self, params: dict[str, str]) -> list[dict[str, Any]]:
        repo = f"{params['owner']}/{params['repo']}"
        return list(reversed(self._statuses.get(repo, {}).get(params["ref"].lower(), [])))

    def _list(self, request: Request, params: dict[str, str]) -> Response:
        statuses = self._newest_first(params)
        per_page_raw = request.query.get("per_page", "30")
        page_raw = request.query.get("page", "1")
        per_page = min(int(per_page_raw), 100) if per_page_raw.isdigit() and int(per_page_raw) > 0 else 30
        page = int(page_raw) if page_raw.isdigit() and int(page_raw) > 0 else 1
        start = (page - 1) * per_page
        response = Response.of_json(200, statuses[start : start + per_page])
        if start + per_page < len(statuses):
            path = f"{self.prefix}/repos/{params['owner']}/{params['repo']}/commits/{params['ref']}/statuses"
            next_url = f"http://{request.header('host')}{path}?per_page={per_page}&page={page + 1}"
            response.headers["Link"] = f'<{next_url}>; rel="next"'
        return response

    def _combined(self, request: Request, params: dict[str, str]) -> Response:
        latest: dict[str, dict[str, Any]] = {}
        for status in self._newest_first(params):
            latest.setdefault(status["context"], status)
        states = {status["state"] for status in latest.values()}
        if states & {"error", "failure"}:
            combined = "failure"
        elif not states or "pending" in states:
            combined = "pending"
        else:
            combined = "success"
        repo = f"{params['owner']}/{params['repo']}"
        base = f"http://{request.header('host')}{self.prefix}/repos/{repo}"
        return Response.of_json(
            200,
            {
                "state": combined,
                "statuses": list(latest.values()),
                "sha": params["ref"].lower(),
                "total_count": len(latest),
                "repository": {"full_name": repo},
                "commit_url": f"{base}/commits/{params['ref'].lower()}",
                "url": f"{base}/commits/{params['ref'].lower()}/status",
            },
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "statuses": {
                repo: {sha: list(reversed(statuses)) for sha, statuses in by_sha.items()}
                for repo, by_sha in self._statuses.items()
            },
            **self.checks.snapshot(),
        }
