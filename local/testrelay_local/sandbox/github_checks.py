"""GitHub check runs and issue (pull-request) comments, with the documented limits: at most 50
annotations a request (422), summary and text at most 65,535 characters, a comment body at most 65,536,
a conclusion required once completed; annotations of every update appended; lists paginated
(`per_page` at most 100, `Link: rel="next"`)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

from testrelay_local.sandbox.github_app import AuthKind, GithubAppAuth, now_stamp
from testrelay_local.sandbox.messages import MalformedBody, Request, Response

MAX_ANNOTATIONS = 50
MAX_OUTPUT_TEXT = 65_535
MAX_COMMENT = 65_536
MAX_ANNOTATION_MESSAGE = 64 * 1024
MAX_ANNOTATION_TITLE = 255
STATUSES = ("queued", "in_progress", "completed")
CONCLUSIONS = ("action_required", "cancelled", "failure", "neutral", "success", "skipped", "stale", "timed_out")
LEVELS = ("notice", "warning", "failure")
CHECKS_DOCS = "https://docs.github.com/rest/checks/runs"
COMMENTS_DOCS = "https://docs.github.com/rest/issues/comments"
_SHA = re.compile(r"^[0-9a-fA-F]{40}$")
_APP_USER = {"login": "testrelay-sandbox[bot]", "id": 2, "type": "Bot"}
_TOKEN_USER = {"login": "testrelay-sandbox", "id": 3, "type": "User"}

Kind = Callable[[Request], AuthKind | None]


def _invalid(docs: str, resource: str, errors: list[str]) -> Response:
    return Response.of_json(
        422,
        {
            "message": "Validation Failed",
            "errors": [{"resource": resource, "code": "custom", "message": error} for error in errors],
            "documentation_url": docs,
        },
    )


def _page(request: Request, items: list[Any], path: str) -> tuple[list[Any], dict[str, str]]:
    raw_size, raw_page = request.query.get("per_page", "30"), request.query.get("page", "1")
    size = min(int(raw_size), 100) if raw_size.isdigit() and int(raw_size) > 0 else 30
    page = int(raw_page) if raw_page.isdigit() and int(raw_page) > 0 else 1
    start = (page - 1) * size
    headers: dict[str, str] = {}
    if start + size < len(items):
        headers["Link"] = f'<http://{request.header("host")}{path}?per_page={size}&page={page + 1}>; rel="next"'
    return items[start : start + size], headers


def _annotation_errors(annotations: object) -> list[str]:
    if not isinstance(annotations, list):
        return ["output.annotations must be an array"]
    if len(annotations) > MAX_ANNOTATIONS:
        return [f"Only {MAX_ANNOTATIONS} annotations are allowed per request ({len(annotations)} were sent)"]
    errors: list[str] = []
    for index, item in enumerate(annotations):
        if not isinstance(item, dict):
            errors.append(f"annotations[{index}] must be an object")
            continue
        for name in ("path", "message", "annotation_level"):
            if not isinstance(item.get(name), str) or not item[name]:
                errors.append(f"annotations[{index}].{name} is required")
        for name in ("start_line", "end_line"):
            if not isinstance(item.get(name), int) or isinstance(item.get(name), bool):
                errors.append(f"annotations[{index}].{name} is required and must be an integer")
        if item.get("annotation_level") not in LEVELS:
            errors.append(f"annotations[{index}].annotation_level must be one of {', '.join(LEVELS)}")
        if len(str(item.get("message", "")).encode()) > MAX_ANNOTATION_MESSAGE:
            errors.append(f"annotations[{index}].message is too long (maximum is 64 KB)")
        if len(str(item.get("title") or "")) > MAX_ANNOTATION_TITLE:
            errors.append(f"annotations[{index}].title is too long (maximum is {MAX_ANNOTATION_TITLE} characters)")
    return errors


def _body_errors(body: dict[str, Any], creating: bool) -> list[str]:
    errors: list[str] = []
    if creating:
        if not isinstance(body.get("name"), str) or not body["name"]:
            errors.append("name is required")
        if not isinstance(body.get("head_sha"), str) or not _SHA.match(body["head_sha"]):
            errors.append("head_sha must be a 40-character commit id")
    status = body.get("status")
    if status is not None and status not in STATUSES:
        errors.append(f"status must be one of {', '.join(STATUSES)}")
    conclusion = body.get("conclusion")
    if conclusion is not None and conclusion not in CONCLUSIONS:
        errors.append(f"conclusion must be one of {', '.join(CONCLUSIONS)}")
    if status == "completed" and conclusion is None:
        errors.append("conclusion is required when status is completed")
    output = body.get("output")
    if output is not None:
        if not isinstance(output, dict):
            return [*errors, "output must be an object"]
        for name in ("title", "summary"):
            if not isinstance(output.get(name), str) or not output[name]:
                errors.append(f"output.{name} is required")
        for name in ("summary", "text"):
            if isinstance(output.get(name), str) and len(output[name]) > MAX_OUTPUT_TEXT:
                errors.append(f"output.{name} is too long (maximum is {MAX_OUTPUT_TEXT} characters)")
        if "annotations" in output:
            errors += _annotation_errors(output["annotations"])
    return errors


class GithubChecks:
    """State and handlers; registered on the GitHub stand-in's router."""

    def __init__(
        self, auth: GithubAppAuth, kind: Kind, clock: Callable[[], float], installed_on: list[str] | None = None
    ) -> None:
        self._auth = auth
        self._installed_on = {repo.lower() for repo in installed_on or []}
        self._kind = kind
        self._clock = clock
        self._ids = itertools.count(4000)
        self.check_runs: dict[str, list[dict[str, Any]]] = {}
        """repo full name → check runs, oldest first (annotations kept in `_annotations`)."""
        self._annotations: dict[int, list[dict[str, Any]]] = {}
        self.comments: dict[str, dict[str, list[dict[str, Any]]]] = {}
        """repo full name → issue number → comments, oldest first."""
        self.edits: dict[int, int] = {}
        """comment id → how many times it was edited."""

    def routes(self) -> list[tuple[str, str, Callable[[Request, dict[str, str]], Response]]]:
        return [
            ("GET", "/repos/{owner}/{repo}/installation", self._installation),
            ("POST", "/app/installations/{installation}/access_tokens", self._access_token),
            ("POST", "/repos/{owner}/{repo}/check-runs", self._create_run),
            ("PATCH", "/repos/{owner}/{repo}/check-runs/{check_run_id}", self._update_run),
            ("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}", self._get_run),
            ("GET", "/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations", self._list_annotations),
            ("GET", "/repos/{owner}/{repo}/commits/{ref}/check-runs", self._runs_for_ref),
            ("GET", "/repos/{owner}/{repo}/issues/{number}/comments", self._list_comments),
            ("POST", "/repos/{owner}/{repo}/issues/{number}/comments", self._create_comment),
            ("PATCH", "/repos/{owner}/{repo}/issues/comments/{comment_id}", self._update_comment),
        ]

    # The App

    def _as_app(self, request: Request) -> Response | None:
        error = self._auth.jwt_error(request)
        if error is None:
            return None
        return Response.of_json(401, {"message": error, "documentation_url": "https://docs.github.com/rest"})

    def _installation(self, request: Request, params: dict[str, str]) -> Response:
        refused = self._as_app(request)
        if refused:
            return refused
        if self._installed_on and f"{params['owner']}/{params['repo']}".lower() not in self._installed_on:
            return Response.of_json(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        return Response.of_json(
            200,
            {
                "id": self._auth.installation_id,
                "app_id": int(self._auth.app_id) if self._auth.app_id.isdigit() else self._auth.app_id,
                "account": {"login": params["owner"]},
                "target_type": "Organization",
                "repository_selection": "all",
                "permissions": {"checks": "write", "pull_requests": "write", "metadata": "read"},
            },
        )

    def _access_token(self, request: Request, params: dict[str, str]) -> Response:
        refused = self._as_app(request)
        if refused:
            return refused
        if params["installation"] != str(self._auth.installation_id):
            return Response.of_json(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        token, expires_at = self._auth.mint(self._auth.installation_id)
        return Response.of_json(
            201,
            {
                "token": token,
                "expires_at": expires_at,
                "permissions": {"checks": "write", "pull_requests": "write", "metadata": "read"},
                "repository_selection": "all",
            },
        )

    # Check runs

    def _needs_installation(self, request: Request) -> Response | None:
        if self._kind(request) == "installation":
            return None
        return Response.of_json(
            403, {"message": "You must authenticate via a GitHub App.", "documentation_url": CHECKS_DOCS}
        )

    def _find(self, params: dict[str, str]) -> dict[str, Any] | None:
        wanted = params["check_run_id"]
        repo = f"{params['owner']}/{params['repo']}"
        return next((run for run in self.check_runs.get(repo, []) if str(run["id"]) == wanted), None)

    def _apply(self, run: dict[str, Any], body: dict[str, Any]) -> None:
        for name in ("name", "details_url", "external_id", "started_at", "status", "conclusion", "completed_at"):
            if name in body:
                run[name] = body[name]
        if body.get("conclusion") is not None:
            run["status"] = "completed"
            run["completed_at"] = run.get("completed_at") or now_stamp(self._clock)
        output = body.get("output")
        if isinstance(output, dict):
            added = output.get("annotations") or []
            self._annotations.setdefault(run["id"], []).extend(dict(a) for a in added)
            run["output"] = {
                "title": output.get("title"),
                "summary": output.get("summary"),
                "text": output.get("text"),
                "annotations_count": len(self._annotations.get(run["id"], [])),
                "annotations_url": f"{run['url']}/annotations",
            }

    def _create_run(self, request: Request, params: dict[str, str]) -> Response:
        refused = self._needs_installation(request)
        if refused:
            return refused
        body = request.json()
        if not isinstance(body, dict):
            raise MalformedBody("the request body must be a JSON object")
        errors = _body_errors(body, creating=True)
        if errors:
            return _invalid(CHECKS_DOCS, "CheckRun", errors)
        repo = f"{params['owner']}/{params['repo']}"
        run_id = next(self._ids)
        run: dict[str, Any] = {
            "id": run_id,
            "url": f"http://{request.header('host')}/github/repos/{repo}/check-runs/{run_id}",
            "head_sha": body["head_sha"].lower(),
            "name": body["name"],
            "status": "queued",
            "conclusion": None,
            "started_at": now_stamp(self._clock),
            "completed_at": None,
            "external_id": "",
            "details_url": None,
            "app": {"id": self._auth.app_id, "slug": "testrelay-sandbox"},
            "output": {"title": None, "summary": None, "text": None, "annotations_count": 0},
            "pull_requests": [],
        }
        self._apply(run, body)
        self.check_runs.setdefault(repo, []).append(run)
        return Response.of_json(201, run)

    def _update_run(self, request: Request, params: dict[str, str]) -> Response:
        refused = self._needs_installation(request)
        if refused:
            return refused
        run = self._find(params)
        if run is None:
            return Response.of_json(404, {"message": "Not Found", "documentation_url": CHECKS_DOCS})
        body = request.json()
        if not isinstance(body, dict):
            raise MalformedBody("the request body must be a JSON object")
        errors = _body_errors(body, creating=False)
        if errors:
            return _invalid(CHECKS_DOCS, "CheckRun", errors)
        self._apply(run, body)
        return Response.of_json(200, run)

    def _get_run(self, request: Request, params: dict[str, str]) -> Response:
        run = self._find(params)
        if run is None:
            return Response.of_json(404, {"message": "Not Found", "documentation_url": CHECKS_DOCS})
        return Response.of_json(200, run)

    def _list_annotations(self, request: Request, params: dict[str, str]) -> Response:
        run = self._find(params)
        if run is None:
            return Response.of_json(404, {"message": "Not Found", "documentation_url": CHECKS_DOCS})
        path = f"/github/repos/{params['owner']}/{params['repo']}/check-runs/{run['id']}/annotations"
        page, headers = _page(request, self._annotations.get(run["id"], []), path)
        return Response.of_json(200, page, headers)

    def _runs_for_ref(self, request: Request, params: dict[str, str]) -> Response:
        repo = f"{params['owner']}/{params['repo']}"
        runs = [run for run in self.check_runs.get(repo, []) if run["head_sha"] == params["ref"].lower()]
        if request.query.get("check_name"):
            runs = [run for run in runs if run["name"] == request.query["check_name"]]
        if request.query.get("status"):
            runs = [run for run in runs if run["status"] == request.query["status"]]
        if request.query.get("filter", "latest") == "latest":
            latest: dict[str, dict[str, Any]] = {}
            for run in runs:
                latest[run["name"]] = run
            runs = list(latest.values())
        newest_first = list(reversed(runs))
        path = f"/github/repos/{repo}/commits/{params['ref']}/check-runs"
        page, headers = _page(request, newest_first, path)
        return Response.of_json(200, {"total_count": len(newest_first), "check_runs": page}, headers)

    # Issue comments

    def _comment_body(self, request: Request) -> tuple[str | None, Response | None]:
        body = request.json()
        if not isinstance(body, dict):
            raise MalformedBody("the request body must be a JSON object")
        text = body.get("body")
        if not isinstance(text, str) or not text:
            return None, _invalid(COMMENTS_DOCS, "IssueComment", ["body is missing"])
        if len(text) > MAX_COMMENT:
            return None, _invalid(
                COMMENTS_DOCS, "IssueComment", [f"Body is too long (maximum is {MAX_COMMENT} characters)"]
            )
        return text, None

    def _list_comments(self, request: Request, params: dict[str, str]) -> Response:
        repo = f"{params['owner']}/{params['repo']}"
        comments = self.comments.get(repo, {}).get(params["number"], [])
        path = f"/github/repos/{repo}/issues/{params['number']}/comments"
        page, headers = _page(request, comments, path)
        return Response.of_json(200, page, headers)

    def _create_comment(self, request: Request, params: dict[str, str]) -> Response:
        text, refused = self._comment_body(request)
        if refused or text is None:
            return refused or Response.of_json(422, {"message": "Validation Failed"})
        repo = f"{params['owner']}/{params['repo']}"
        comment_id = next(self._ids)
        stamp = now_stamp(self._clock)
        comment = {
            "id": comment_id,
            "node_id": f"IC_sandbox{comment_id}",
            "url": f"http://{request.header('host')}/github/repos/{repo}/issues/comments/{comment_id}",
            "html_url": f"https://github.com/{repo}/pull/{params['number']}#issuecomment-{comment_id}",
            "body": text,
            "user": dict(_APP_USER if self._kind(request) == "installation" else _TOKEN_USER),
            "created_at": stamp,
            "updated_at": stamp,
        }
        self.comments.setdefault(repo, {}).setdefault(params["number"], []).append(comment)
        return Response.of_json(201, comment)

    def _update_comment(self, request: Request, params: dict[str, str]) -> Response:
        text, refused = self._comment_body(request)
        if refused or text is None:
            return refused or Response.of_json(422, {"message": "Validation Failed"})
        repo = f"{params['owner']}/{params['repo']}"
        for comments in self.comments.get(repo, {}).values():
            for comment in comments:
                if str(comment["id"]) == params["comment_id"]:
                    comment.update(body=text, updated_at=now_stamp(self._clock))
                    self.edits[comment["id"]] = self.edits.get(comment["id"], 0) + 1
                    return Response.of_json(200, comment)
        return Response.of_json(404, {"message": "Not Found", "documentation_url": COMMENTS_DOCS})

    def snapshot(self) -> dict[str, Any]:
        return {
            "check_runs": {
                repo: [{**run, "annotations": self._annotations.get(run["id"], [])} for run in runs]
                for repo, runs in self.check_runs.items()
            },
            "comments": {
                repo: {
                    n: [{**c, "edits": self.edits.get(c["id"], 0)} for c in comments] for n, comments in by_n.items()
                }
                for repo, by_n in self.comments.items()
            },
            "app_tokens_minted": self._auth.minted,
        }
