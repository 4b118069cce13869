"""Testsigma Test Management API (`/testsigma-tm/api/v1`): test runs and the statuses of their cases.

Lists page with `page_size` and a cursor (`page_info {page_size, total_count, next, prev}`): the
documents do not name the cursor's query parameter nor say what `next` is, so `behaviour.tm_paging`
picks the variant (an opaque token in `cursor`, `page_token` or `after`; a page number in `page`; the
following page's whole URL; or a parameter no client knows, where every call answers page 1 with a
non-null `next`, as a real server ignoring an unknown parameter would). A test case's labels are
`{id, name}` objects by default, strings with `behaviour.tm_labels = "strings"`.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import math
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from testrelay_local.sandbox.messages import MalformedBody, Request, Response
from testrelay_local.sandbox.seed import SandboxSeed, TmCaseSeed
from testrelay_local.sandbox.vendor import VendorApi

RATE_LIMIT_PER_SECOND = 10
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
UNTESTED = "Untested"
_RUN_ID_NAMESPACE = uuid.UUID("5f0c4a8e-2d7b-4c39-9a61-0e8f3b7d2c14")
_LABEL_ID_NAMESPACE = uuid.UUID("0d7f8a62-93b1-4c5e-8f2a-6b4e1c9d3a70")
# The query parameter carrying page_info.next, per paging variant (next_url: the URL holds `cursor`).
_CURSOR_PARAMETER = {
    "cursor": "cursor",
    "page_token": "page_token",
    "after": "after",
    "page_number": "page",
    "next_url": "cursor",
    "unknown_param": "starting_after_cursor",
}


class _Invalid(Exception):
    """A request the vendor answers with 422, naming each offending field."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__(errors)
        self.errors = errors


@dataclass
class _RunCase:
    case: TmCaseSeed
    test_run_status_id: str | None
    updated_at: int
    user_id: str | None = None
    description: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {
            "test_case_id": self.case.id,
            "test_run_status_id": self.test_run_status_id,
            "user_id": self.user_id,
            "description": self.description,
            "updated_at": self.updated_at,
        }


@dataclass
class _TestRun:
    fields: dict[str, Any]
    """The test run object exactly as the API answers it."""
    cases: dict[str, _RunCase]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _offset(cursor: str) -> int:
    try:
        kind, _, offset = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _Invalid({"cursor": ["is not a cursor this API returned"]}) from exc
    if kind != "offset" or not offset.isdigit():
        raise _Invalid({"cursor": ["is not a cursor this API returned"]})
    return int(offset)


class TestsigmaTmApi(VendorApi):
    name = "testsigma_tm"
    prefix = "/testsigma-tm/api/v1"

    def __init__(self, seed: SandboxSeed, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._seed = seed
        self._clock = clock
        self._runs: dict[str, dict[str, _TestRun]] = {project_id: {} for project_id in seed.tm_projects}
        self._run_numbers = itertools.count(1)
        self._statuses = {status.id: status.name for status in seed.tm_run_statuses}
        self._untested = next((sid for sid, name in self._statuses.items() if name == UNTESTED), None)
        self._users = {user.id for user in seed.tm_users}
        self._window_second = 0
        self._window_calls = 0
        routes = {
            ("GET", "/projects/{project_id}/test_runs"): self._list_runs,
            ("POST", "/projects/{project_id}/test_runs"): self._create_run,
            ("GET", "/projects/{project_id}/test_runs/{test_run_id}"): self._get_run,
            ("GET", "/projects/{project_id}/test_runs/{test_run_id}/test_cases"): self._list_run_cases,
            ("PUT", "/projects/{project_id}/test_runs/{test_run_id}/test_cases"): self._update_run_cases,
            ("GET", "/projects/{project_id}/test_cases"): self._list_cases,
            ("GET", "/test_runs/statuses"): self._list_statuses,
            ("GET", "/users"): self._list_users,
        }
        for (method, template), handler in routes.items():
            self.router.add(method, template, self._validated(handler))

    def authorized(self, request: Request) -> bool:
        return request.credentials("Bearer") == self._seed.testsigma_tm_api_key

    def error(self, status: int, message: str) -> Response:
        return Response.of_json(status, {"message": message})

    def malformed(self, message: str) -> Response:
        return self._unprocessable({"body": [message]})

    def throttled(self) -> Response:
        # Testsigma TM's documented quirk: throttling comes as a 500, not a 429.
        return Response.of_json(500, {"message": "rate limit exceeded"})

    def decorate(self, response: Response) -> Response:
        now = self._clock()
        second = math.floor(now)
        if second != self._window_second:
            self._window_second, self._window_calls = second, 0
        self._window_calls += 1
        response.headers.update(
            {
                "x-tms-api-limit": str(RATE_LIMIT_PER_SECOND),
                "x-tms-api-remaining": str(max(RATE_LIMIT_PER_SECOND - self._window_calls, 0)),
                "x-tms-api-reset": str(second + 1),
            }
        )
        return response

    @staticmethod
    def _unprocessable(errors: dict[str, list[str]]) -> Response:
        field_name, messages = next(iter(errors.items()))
        return Response.of_json(422, {"message": f"Validation failed: {field_name} {messages[0]}", "errors": errors})

    def _validated(
        self, handler: Callable[[Request, dict[str, str]], Response]
    ) -> Callable[[Request, dict[str, str]], Response]:
        def handle(request: Request, params: dict[str, str]) -> Response:
            if "project_id" in params and params["project_id"] not in self._seed.tm_projects:
                return self.error(404, f"Project {params['project_id']} not found")
            try:
                return handler(request, params)
            except _Invalid as invalid:
                return self._unprocessable(invalid.errors)

        return handle

    def _page(self, request: Request, key: str, items: Sequence[dict[str, Any]]) -> Response:
        raw_size = request.query.get("page_size", str(DEFAULT_PAGE_SIZE))
        if not raw_size.isdigit() or not 1 <= int(raw_size) <= MAX_PAGE_SIZE:
            raise _Invalid({"page_size": [f"must be a whole number from 1 to {MAX_PAGE_SIZE}"]})
        size = int(raw_size)
        variant = self.behaviour.tm_paging
        parameter = _CURSOR_PARAMETER[variant]
        raw = request.query.get(parameter)
        if variant == "page_number":
            if raw is not None and (not raw.isdigit() or int(raw) < 1):
                raise _Invalid({parameter: ["must be a page number from 1"]})
            offset = (int(raw) - 1) * size if raw else 0
        else:
            offset = _offset(raw) if raw else 0
        following = offset + size

        def link(position: int) -> Any:
            if variant == "page_number":
                return position // size + 1
            token = _cursor(position)
            if variant == "next_url":
                query = urlencode({**request.query, parameter: token})
                return f"http://{request.header('host') or '127.0.0.1'}{self.prefix}{request.path}?{query}"
            return token

        return Response.of_json(
            200,
            {
                "data": {key: list(items[offset:following])},
                "page_info": {
                    "page_size": size,
                    "total_count": len(items),
                    "next": link(following) if following < len(items) else None,
                    "prev": link(max(offset - size, 0)) if offset > 0 else None,
                },
            },
        )

    def _run(self, params: dict[str, str]) -> _TestRun | None:
        return self._runs[params["project_id"]].get(params["test_run_id"])

    def _list_runs(self, request: Request, params: dict[str, str]) -> Response:
        runs = self._runs[params["project_id"]].values()
        return self._page(request, "test_runs", [dict(run.fields) for run in runs])

    def _get_run(self, _: Request, params: dict[str, str]) -> Response:
        run = self._run(params)
        if run is None:
            return self.error(404, f"Test run {params['test_run_id']} not found")
        return Response.of_json(200, {"message": "", "data": {"test_run": dict(run.fields)}})

    def _list_run_cases(self, request: Request, params: dict[str, str]) -> Response:
        run = self._run(params)
        if run is None:
            return self.error(404, f"Test run {params['test_run_id']} not found")
        return self._page(request, "test_run_cases", [run_case.view() for run_case in run.cases.values()])

    def _list_cases(self, request: Request, params: dict[str, str]) -> Response:
        project_id = params["project_id"]
        cases = self._seed.tm_projects[project_id].cases
        return self._page(request, "test_cases", [self._case_view(case, project_id) for case in cases])

    def _case_view(self, case: TmCaseSeed, project_id: str) -> dict[str, Any]:
        view: dict[str, Any] = {**case.model_dump(), "project_id": project_id}
        if self.behaviour.tm_labels == "objects":
            view["labels"] = [
                {"id": str(uuid.uuid5(_LABEL_ID_NAMESPACE, f"{project_id}:{name}")), "name": name}
                for name in case.labels
            ]
        return view

    def _list_statuses(self, request: Request, _: dict[str, str]) -> Response:
        return self._page(request, "test_run_statuses", [status.model_dump() for status in self._seed.tm_run_statuses])

    def _list_users(self, request: Request, _: dict[str, str]) -> Response:
        return self._page(request, "users", [user.model_dump() for user in self._seed.tm_users])

    def _create_run(self, request: Request, params: dict[str, str]) -> Response:
        project_id = params["project_id"]
        body = request.json()
        if not isinstance(body, dict):
            raise MalformedBody("the request body must be a JSON object")
        errors: dict[str, list[str]] = {}
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            errors["title"] = ["can't be blank"]
        if body.get("project_id") not in (None, project_id):
            errors["project_id"] = [f"must be the project of the path ({project_id})"]
        if body.get("selection_type") != "STATIC":
            errors["selection_type"] = ["must be STATIC; no other selection type is supported"]
        case_ids = self._selected_cases(project_id, body.get("static_selection_filters"), errors)
        for name in ("description", "status", "human_id"):
            if body.get(name) is not None and not isinstance(body[name], str):
                errors[name] = ["must be a string"]
        for name in ("start_date", "end_date"):
            if body.get(name) is not None and not _is_int(body[name]):
                errors[name] = ["must be a Unix timestamp"]
        for name in ("label_names", "environment_ids"):
            if not _is_str_list(body.get(name, [])):
                errors[name] = ["must be an array of strings"]
        assignee_id = body.get("assignee_id")
        if assignee_id is not None and assignee_id not in self._users:
            errors["assignee_id"] = ["is not a user of this account"]
        if errors:
            raise _Invalid(errors)
        number = next(self._run_numbers)
        now = int(self._clock())
        run_id = str(uuid.uuid5(_RUN_ID_NAMESPACE, f"{project_id}:{number}"))
        fields = {
            "id": run_id,
            "human_id": body.get("human_id") or f"TR-{number}",
            "created_at": now,
            "updated_at": now,
            "title": title,
            "description": body.get("description"),
            "status": body.get("status") or "ACTIVE",
            "project_id": project_id,
            "selection_type": "STATIC",
            "start_date": body.get("start_date"),
            "end_date": body.get("end_date"),
            "assignee_id": assignee_id,
            "label_names": list(body.get("label_names", [])),
            "environment_ids": list(body.get("environment_ids", [])),
        }
        cases = {case.id: case for case in self._seed.tm_projects[project_id].cases}
        self._runs[project_id][run_id] = _TestRun(
            fields=fields,
            cases={case_id: _RunCase(cases[case_id], self._untested, now) for case_id in case_ids},
        )
        return Response.of_json(200, {"message": "", "data": {"test_run": dict(fields)}})

    def _selected_cases(self, project_id: str, filters: Any, errors: dict[str, list[str]]) -> list[str]:
        key = "static_selection_filters"
        if not isinstance(filters, list) or not filters:
            errors[key] = ["must list at least one filter"]
            return []
        known = {case.id for case in self._seed.tm_projects[project_id].cases}
        selected: dict[str, None] = {}
        for index, selection in enumerate(filters):
            if not isinstance(selection, dict):
                errors[f"{key}[{index}]"] = ["must be an object"]
                continue
            if selection.get("field") != "id":
                errors[f"{key}[{index}].field"] = ["only id is supported"]
            if selection.get("operator") != "IN":
                errors[f"{key}[{index}].operator"] = ["only IN is supported"]
            values = selection.get("values")
            if not _is_str_list(values) or not values:
                errors[f"{key}[{index}].values"] = ["must be a non-empty array of test case ids"]
                continue
            unknown = [value for value in values if value not in known]
            if unknown:
                errors[f"{key}[{index}].values"] = [f"unknown test case ids in this project: {', '.join(unknown)}"]
            selected.update(dict.fromkeys(value for value in values if value in known))
        return list(selected)

    def _update_run_cases(self, request: Request, params: dict[str, str]) -> Response:
        run = self._run(params)
        if run is None:
            return self.error(404, f"Test run {params['test_run_id']} not found")
        body = request.json()
        if not isinstance(body, dict):
            raise MalformedBody("the request body must be a JSON object")
        updates = body.get("test_run_cases")
        if not isinstance(updates, list) or not updates:
            raise _Invalid({"test_run_cases": ["must be a non-empty array"]})
        errors: dict[str, list[str]] = {}
        for index, update in enumerate(updates):
            key = f"test_run_cases[{index}]"
            if not isinstance(update, dict):
                errors[key] = ["must be an object"]
                continue
            if update.get("test_case_id") not in run.cases:
                errors[f"{key}.test_case_id"] = [f"is not a test case of test run {run.fields['id']}"]
            if update.get("test_run_status_id") not in self._statuses:
                errors[f"{key}.test_run_status_id"] = ["is not a known test run status"]
            if update.get("user_id") is not None and update["user_id"] not in self._users:
                errors[f"{key}.user_id"] = ["is not a user of this account"]
            if update.get("description") is not None and not isinstance(update["description"], str):
                errors[f"{key}.description"] = ["must be a string"]
        if errors:
            raise _Invalid(errors)
        now = int(self._clock())
        answered = []
        for update in updates:
            run_case = run.cases[update["test_case_id"]]
            run_case.test_run_status_id = update["test_run_status_id"]
            run_case.user_id = update.get("user_id")
            run_case.description = update.get("description")
            run_case.updated_at = now
            run_case.history.append(run_case.view())
            answered.append({key: value for key, value in run_case.view().items() if key != "description"})
        run.fields["updated_at"] = now
        return Response.of_json(
            200, {"message": "Test run cases updated successfully.", "data": {"test_run_cases": answered}}
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "projects": {
                project_id: {
                    "name": project.name,
                    "test_cases": [case.model_dump() for case in project.cases],
                    "test_runs": {
                        run_id: {
                            **run.fields,
                            "test_run_cases": [self._run_case_state(rc) for rc in run.cases.values()],
                        }
                        for run_id, run in self._runs[project_id].items()
                    },
                }
                for project_id, project in self._seed.tm_projects.items()
            },
            "run_statuses": [status.model_dump() for status in self._seed.tm_run_statuses],
            "users": [user.model_dump() for user in self._seed.tm_users],
        }

    def _run_case_state(self, run_case: _RunCase) -> dict[str, Any]:
        return {
            **run_case.view(),
            "human_id": run_case.case.human_id,
            "title": run_case.case.title,
            "status_name": self._statuses.get(run_case.test_run_status_id or ""),
            "update_count": len(run_case.history),
            "history": list(run_case.history),
        }
