"""BrowserStack Test Management API v2 (`/browserstack-tm/api/v2`): test runs, their cases and results.

Faithful to vendor-api/browserstack-tm-test-runs.txt: list (filters, `p`/`page_size` pages with
`info`), create, get, test cases (paged), PATCH and POST update, update-test-cases (202, applied
asynchronously after `bs_async_delay_s`, with its documented 400 codes), assign, clone, close,
delete, and results (one per call as documented, paged listing).
Where the document is silent, `behaviour` (seed or `POST /_sandbox/config`) picks the variant: the
multi-result call (`bs_bulk_results`: absent by default), the cases-per-call cap behind the documented
`max_test_cases_per_request_exceeded` (`bs_max_cases_per_request`) and the shape of a case's custom
fields (`bs_custom_fields`: the documented list of `{field_name, value}` by default).
The 300 requests/minute limit is enforced per account by the generic throttle (sandbox/throttle.py).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from testrelay_local.sandbox.messages import MalformedBody, Request, Response
from testrelay_local.sandbox.seed import BsCaseSeed, SandboxSeed
from testrelay_local.sandbox.vendor import VendorApi

SYSTEM_STATUSES = ("passed", "failed", "skipped", "blocked", "retest", "untested", "in_progress")
RUN_STATES = ("new_run", "in_progress", "under_review", "rejected", "done", "closed")
DEFAULT_PAGE_SIZE = 30
MAX_PAGE_SIZE = 300
MAX_BULK_CASES = 300


class _Refused(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class _RunCase:
    case: BsCaseSeed
    configuration_id: int | None
    results: list[dict[str, Any]] = field(default_factory=list)
    assignee: str | None = None

    @property
    def latest_status(self) -> str:
        return str(self.results[-1]["status"]) if self.results else "untested"


@dataclass
class _Run:
    fields: dict[str, Any]
    cases: dict[tuple[str, int | None], _RunCase]
    pending: list[tuple[float, str, list[str], list[int]]] = field(default_factory=list)
    """(apply at, operation, case ids, configuration ids) of accepted update-test-cases requests."""


def _slots(configurations: list[int]) -> list[int | None]:
    """A run holds each case once per configuration, or once without one."""
    return list(configurations) or [None]


def _now_iso(clock: float) -> str:
    return datetime.fromtimestamp(clock, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class BrowserStackTmApi(VendorApi):
    name = "browserstack_tm"
    prefix = "/browserstack-tm"

    def __init__(self, seed: SandboxSeed, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._seed = seed
        self._clock = clock
        self._runs: dict[str, dict[str, _Run]] = {project_id: {} for project_id in seed.bs_projects}
        self._numbers = itertools.count(1)
        self._result_ids = itertools.count(108001)
        self._statuses = {*SYSTEM_STATUSES, *(s.lower() for s in seed.bs_custom_statuses)}
        runs = "/api/v2/projects/{project_id}/test-runs"
        run = runs + "/{run_id}"
        routes: list[tuple[str, str, Callable[[Request, dict[str, str]], Response]]] = [
            # BrowserStack's own client finds the account's region by listing projects (tm-base-url.ts).
            ("GET", "/api/v2/projects", self._list_projects),
            ("GET", "/api/v2/projects/{project_id}/test-cases", self._project_cases),
            ("GET", runs, self._list_runs),
            ("POST", runs, self._create_run),
            ("GET", run, self._get_run),
            ("GET", run + "/test-cases", self._run_cases),
            ("PATCH", run + "/update", self._patch_run),
            ("POST", run + "/update", self._replace_run),
            ("PATCH", run + "/update-test-cases", self._update_test_cases),
            ("POST", run + "/assign", self._assign),
            ("POST", run + "/clone", self._clone),
            ("POST", run + "/close", self._close),
            ("POST", run + "/delete", self._delete),
            ("GET", run + "/results", self._list_results),
            ("POST", run + "/results", self._add_result),
            ("POST", run + "/results/bulk", self._add_results),
        ]
        for method, template, handler in routes:
            self.router.add(method, template, self._guarded(handler))

    # --- what every vendor stand-in provides -------------------------------------------------------

    def authorized(self, request: Request) -> bool:
        credential = request.credentials("Basic")
        if not credential:
            return False
        try:
            decoded = base64.b64decode(credential, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        return decoded == f"{self._seed.browserstack_username}:{self._seed.browserstack_access_key}"

    def error(self, status: int, message: str) -> Response:
        return Response.of_json(status, {"success": False, "message": message})

    def throttled(self) -> Response:
        return Response.of_json(429, {"success": False, "message": "rate limit exceeded"}, headers={"Retry-After": "1"})

    def _guarded(
        self, handler: Callable[[Request, dict[str, str]], Response]
    ) -> Callable[[Request, dict[str, str]], Response]:
        def handle(request: Request, params: dict[str, str]) -> Response:
            now = self._clock()  # the 300 requests/minute are enforced per account by sandbox/throttle.py
            self._settle(now)
            if "project_id" in params and params["project_id"] not in self._seed.bs_projects:
                return self.error(404, f"Project {params['project_id']} not found")
            if "run_id" in params and params["run_id"] not in self._runs[params["project_id"]]:
                return self.error(404, f"Test run {params['run_id']} not found")
            try:
                return handler(request, params)
            except _Refused as refused:
                body = {"success": False, "error": refused.code, "message": refused.message}
                return Response.of_json(refused.status, body)

        return handle

    def _settle(self, now: float) -> None:
        """Applies the asynchronous update-test-cases requests whose time has come."""
        for project_id, runs in self._runs.items():
            for run in runs.values():
                due = [op for op in run.pending if op[0] <= now]
                run.pending = [op for op in run.pending if op[0] > now]
                for _, operation, case_ids, configurations in due:
                    cases = self._cases(project_id)
                    for case_id in case_ids:
                        for configuration in _slots(configurations):
                            key = (case_id, configuration)
                            if operation == "add" and key not in run.cases:
                                run.cases[key] = _RunCase(cases[case_id], configuration)
                            elif operation == "remove":
                                run.cases.pop(key, None)
                    run.fields["test_cases_count"] = len(run.cases)

    # --- helpers -----------------------------------------------------------------------------------

    def _cases(self, project_id: str) -> dict[str, BsCaseSeed]:
        return {case.identifier: case for case in self._seed.bs_projects[project_id].cases}

    def _run(self, params: dict[str, str]) -> _Run:
        return self._runs[params["project_id"]][params["run_id"]]

    @staticmethod
    def _body(request: Request, key: str | None = None) -> dict[str, Any]:
        body = request.json()
        if not isinstance(body, dict):
            raise MalformedBody("the request body must be a JSON object")
        if key is None:
            return body
        inner = body.get(key)
        if not isinstance(inner, dict):
            raise _Refused("validation_failed", f"the body must hold a {key!r} object")
        return inner

    def _list_projects(self, request: Request, _: dict[str, str]) -> Response:
        projects = [{"identifier": pid, "name": project.name} for pid, project in self._seed.bs_projects.items()]
        return self._page(request, "projects", projects)

    @staticmethod
    def _page(request: Request, key: str, items: Sequence[dict[str, Any]]) -> Response:
        raw_page = request.query.get("p", "1")
        raw_size = request.query.get("page_size", str(DEFAULT_PAGE_SIZE))
        if not raw_page.isdigit() or int(raw_page) < 1:
            raise _Refused("validation_failed", "p must be a page number from 1")
        if not raw_size.isdigit() or not 1 <= int(raw_size) <= MAX_PAGE_SIZE:
            raise _Refused("validation_failed", f"page_size must be from 1 to {MAX_PAGE_SIZE}")
        page, size = int(raw_page), int(raw_size)
        start = (page - 1) * size
        info = {
            "page": page,
            "page_size": size,
            "count": len(items),
            "prev": page - 1 if page > 1 else None,
            "next": page + 1 if start + size < len(items) else None,
        }
        return Response.of_json(200, {"success": True, "info": info, key: list(items[start : start + size])})

    def _known_cases(self, project_id: str, value: Any, name: str = "test_cases") -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _Refused("invalid_entry_shape", f"{name} must be an array of test case ids")
        cases = self._cases(project_id)
        unknown = [v for v in value if v not in cases]
        if unknown:
            raise _Refused("invalid_test_case_id", f"One or more test case IDs are invalid: {', '.join(unknown[:10])}")
        return list(dict.fromkeys(value))

    def _configurations(self, project_id: str, value: Any) -> list[int]:
        if value is None:
            return []
        known = set(self._seed.bs_projects[project_id].configurations)
        if not isinstance(value, list) or any(not isinstance(v, int) or v not in known for v in value):
            raise _Refused("invalid_configuration_ids", "One or more configuration IDs are invalid.")
        return list(value)

    def _run_view(self, run: _Run) -> dict[str, Any]:
        progress = dict.fromkeys(SYSTEM_STATUSES, 0)
        for run_case in run.cases.values():
            progress[run_case.latest_status] = progress.get(run_case.latest_status, 0) + 1
        return {**run.fields, "test_cases_count": len(run.cases), "overall_progress": progress}

    def _case_view(self, run_case: _RunCase, project_id: str) -> dict[str, Any]:
        latest = run_case.results[-1]["id"] if run_case.results else None
        return {
            "identifier": run_case.case.identifier,
            "name": run_case.case.title,
            "project_id": project_id,
            "latest_status": run_case.latest_status,
            "latest_result_id": latest,
            "configuration_id": run_case.configuration_id,
            "assignee": run_case.assignee,
        }

    # --- endpoints -------------------------------------------------------------------------------

    def _project_cases(self, request: Request, params: dict[str, str]) -> Response:
        cases = self._seed.bs_projects[params["project_id"]].cases
        return self._page(request, "test_cases", [self._project_case_view(case) for case in cases])

    def _project_case_view(self, case: BsCaseSeed) -> dict[str, Any]:
        view: dict[str, Any] = {**case.model_dump(), "name": case.title}
        if self.behaviour.bs_custom_fields == "list":
            view["custom_fields"] = [{"field_name": name, "value": value} for name, value in case.custom_fields.items()]
        return view

    def _list_runs(self, request: Request, params: dict[str, str]) -> Response:
        query = request.query
        runs = [self._run_view(run) for run in self._runs[params["project_id"]].values()]
        if query.get("include_closed", "false").lower() != "true":
            runs = [run for run in runs if run["active_state"] != "closed"]
        if query.get("run_state"):
            states = set(query["run_state"].split(","))
            runs = [run for run in runs if run["run_state"] in states]
        if query.get("assignee"):
            assignees = set(query["assignee"].split(","))
            runs = [run for run in runs if run.get("assignee") in assignees]
        if query.get("test_plan_id"):
            runs = [run for run in runs if run.get("test_plan_id") == query["test_plan_id"]]
        if query.get("created_after"):
            runs = [run for run in runs if run["created_at"][:10] >= query["created_after"]]
        if query.get("created_before"):
            runs = [run for run in runs if run["created_at"][:10] < query["created_before"]]
        return self._page(request, "test_runs", runs)

    def _create_run(self, request: Request, params: dict[str, str]) -> Response:
        project_id = params["project_id"]
        body = self._body(request, "test_run")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _Refused("validation_failed", "name can't be blank")
        if body.get("test_plan_id") and body.get("sub_test_plan_id"):
            raise _Refused("validation_failed", "test_plan_id and sub_test_plan_id are mutually exclusive")
        run_state = body.get("run_state", "new_run")
        if run_state not in RUN_STATES:
            raise _Refused("validation_failed", f"run_state must be one of {', '.join(RUN_STATES)}")
        configurations = self._configurations(project_id, body.get("configurations"))
        if body.get("include_all"):
            case_ids = list(self._cases(project_id))
        else:
            case_ids = self._known_cases(project_id, body.get("test_cases", []))
        number = next(self._numbers)
        now = self._clock()
        fields = {
            "identifier": f"TR-{number}",
            "name": name,
            "description": body.get("description") or "",
            "run_state": run_state,
            "active_state": "active",
            "assignee": body.get("assignee"),
            "project_id": project_id,
            "tags": list(body.get("tags") or []),
            "configurations": configurations,
            "test_plan_id": body.get("test_plan_id"),
            "created_at": _now_iso(now),
            "updated_at": _now_iso(now),
        }
        cases = self._cases(project_id)
        run = _Run(
            fields,
            {(c, cfg): _RunCase(cases[c], cfg) for c in case_ids for cfg in _slots(configurations)},
        )
        self._runs[project_id][fields["identifier"]] = run
        return Response.of_json(200, {"success": True, "testrun": self._run_view(run)})

    def _get_run(self, request: Request, params: dict[str, str]) -> Response:
        run = self._run(params)
        view = self._run_view(run)
        view["links"] = {
            "test_cases": f"/api/v2/projects/{params['project_id']}/test-runs/{params['run_id']}/test-cases"
        }
        if request.query.get("minify") != "true":
            view["test_cases"] = [self._case_view(rc, params["project_id"]) for rc in list(run.cases.values())[:30]]
        return Response.of_json(200, {"success": True, "test_run": view})

    def _run_cases(self, request: Request, params: dict[str, str]) -> Response:
        run = self._run(params)
        views = [self._case_view(rc, params["project_id"]) for rc in run.cases.values()]
        return self._page(request, "test_cases", views)

    def _apply_changes(self, run: _Run, project_id: str, body: dict[str, Any]) -> None:
        if "run_state" in body and body["run_state"] not in RUN_STATES:
            raise _Refused("validation_failed", f"run_state must be one of {', '.join(RUN_STATES)}")
        if "test_cases" in body:
            case_ids = self._known_cases(project_id, body["test_cases"])
            configurations = self._configurations(project_id, body.get("configurations", run.fields["configurations"]))
            cases = self._cases(project_id)
            run.cases = {(c, cfg): _RunCase(cases[c], cfg) for c in case_ids for cfg in _slots(configurations)}
        for key in ("name", "description", "run_state", "assignee", "tags", "configurations", "test_plan_id"):
            if key in body:
                run.fields[key] = body[key]
        run.fields["updated_at"] = _now_iso(self._clock())

    def _patch_run(self, request: Request, params: dict[str, str]) -> Response:
        run = self._run(params)
        self._apply_changes(run, params["project_id"], self._body(request, "test_run"))
        return Response.of_json(200, {"success": True, "testrun": self._run_view(run)})

    def _replace_run(self, request: Request, params: dict[str, str]) -> Response:
        body = self._body(request, "test_run")
        required = ("name", "description", "run_state", "assignee", "test_case_assignee", "tags", "issues")
        missing = [key for key in (*required, "configurations", "test_cases", "folder_ids") if key not in body]
        if missing:
            raise _Refused("validation_failed", f"the POST update needs every field; missing: {', '.join(missing)}")
        run = self._run(params)
        self._apply_changes(run, params["project_id"], body)
        return Response.of_json(200, {"success": True, "testrun": self._run_view(run)})

    def _update_test_cases(self, request: Request, params: dict[str, str]) -> Response:
        project_id = params["project_id"]
        body = self._body(request, "test_run")
        preserve = body.get("preserve_existing_results", False)
        if not isinstance(preserve, bool):
            raise _Refused("invalid_preserve_flag", "preserve_existing_results must be a boolean")
        operations: list[tuple[str, list[str], list[int]]] = []
        total = 0
        for operation, key in (("add", "add_test_cases"), ("remove", "remove_test_cases")):
            entries = body.get(key) or []
            if not isinstance(entries, list):
                raise _Refused("invalid_entry_shape", f"{key} must be an array")
            for entry in entries:
                if not isinstance(entry, dict) or not isinstance(entry.get("test_case_ids"), list):
                    raise _Refused("invalid_entry_shape", f"each {key} entry needs a test_case_ids array")
                ids = entry["test_case_ids"]
                if len(ids) != len(set(ids)):
                    raise _Refused("duplicate_test_case_id", "A test case ID appears more than once in test_case_ids")
                known = self._known_cases(project_id, ids, "test_case_ids")
                configurations = self._configurations(project_id, entry.get("configuration_ids"))
                total += len(known)
                operations.append((operation, known, configurations))
        if not operations:
            raise _Refused("operation_required", "Send at least one test case in add_test_cases or remove_test_cases")
        if total > self.behaviour.bs_max_cases_per_request:
            raise _Refused(
                "max_test_cases_per_request_exceeded", "The request includes more test cases than a single call allows."
            )
        run = self._run(params)
        apply_at = self._clock() + self._seed.bs_async_delay_s
        unique_id = f"{params['run_id']}-{next(self._numbers)}"
        run.pending += [(apply_at, op, ids, cfgs) for op, ids, cfgs in operations]
        return Response.of_json(202, {"success": True, "async": True, "unique_id": unique_id})

    def _assign(self, request: Request, params: dict[str, str]) -> Response:
        run = self._run(params)
        assignments = self._body(request).get("assign_to")
        if not isinstance(assignments, list) or not assignments:
            raise _Refused("validation_failed", "assign_to must be a non-empty array")
        for item in assignments:
            if not isinstance(item, dict) or not item.get("test_case_id") or not item.get("assignee"):
                raise _Refused("validation_failed", "each assign_to entry needs test_case_id and assignee")
            keys = [key for key in run.cases if key[0] == item["test_case_id"]]
            if item.get("configuration_id") is not None:
                keys = [key for key in keys if key[1] == item["configuration_id"]]
            if not keys:
                raise _Refused("invalid_test_case_id", f"{item['test_case_id']} is not in this test run")
            for key in keys:
                run.cases[key].assignee = str(item["assignee"])
        return Response.of_json(200, {"success": True})

    def _clone(self, request: Request, params: dict[str, str]) -> Response:
        source = self._run(params)
        body = self._body(request) if request.body.strip() else {}
        selection = body.get("test_case_selection", "all")
        if selection not in ("all", "by_results"):
            raise _Refused("validation_failed", "test_case_selection must be all or by_results")
        statuses = body.get("statuses")
        if selection == "by_results" and (not isinstance(statuses, list) or not statuses):
            raise _Refused("validation_failed", "statuses is required when test_case_selection is by_results")
        if selection == "by_results" and any(s not in self._statuses for s in statuses or []):
            raise _Refused("validation_failed", "unknown status name in statuses")
        keys = [key for key, rc in source.cases.items() if selection == "all" or rc.latest_status in (statuses or [])]
        number = next(self._numbers)
        now = self._clock()
        fields = {
            **source.fields,
            "identifier": f"TR-{number}",
            "name": body.get("name") or f"{source.fields['name']} - Copy",
            "run_state": "new_run",
            "active_state": "active",
            "tags": source.fields["tags"] if body.get("copy_tags", True) else [],
            "test_plan_id": None,
            "created_at": _now_iso(now),
            "updated_at": _now_iso(now),
        }
        clone = _Run(fields, {key: _RunCase(source.cases[key].case, key[1]) for key in keys})
        self._runs[params["project_id"]][fields["identifier"]] = clone
        view = self._run_view(clone)
        view["test_case_summary"] = view.pop("overall_progress")
        return Response.of_json(200, {"success": True, "test_run": view})

    def _close(self, _: Request, params: dict[str, str]) -> Response:
        run = self._run(params)
        run.fields.update(run_state="closed", active_state="closed", updated_at=_now_iso(self._clock()))
        return Response.of_json(200, {"success": True, "testrun": self._run_view(run)})

    def _delete(self, _: Request, params: dict[str, str]) -> Response:
        del self._runs[params["project_id"]][params["run_id"]]
        message = f"Test Run {params['run_id']} has been deleted successfully"
        return Response.of_json(200, {"success": True, "message": message})

    def _list_results(self, request: Request, params: dict[str, str]) -> Response:
        run = self._run(params)
        results = [result for rc in run.cases.values() for result in rc.results]
        return self._page(request, "test-results", sorted(results, key=lambda r: r["id"]))

    def _record(self, run: _Run, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict) or not isinstance(item.get("test_result"), dict):
            raise _Refused("validation_failed", "each result needs test_case_id and a test_result object")
        case_id = item.get("test_case_id")
        configuration = item.get("configuration_id")
        if run.fields["configurations"] and configuration is None:
            raise _Refused("validation_failed", "configuration_id is required: the run has configurations")
        run_case = run.cases.get((str(case_id), configuration))
        if run_case is None:
            raise _Refused("invalid_test_case_id", f"{case_id} is not a test case of {run.fields['identifier']}")
        status = str(item["test_result"].get("status") or "").lower()
        if status not in self._statuses:
            raise _Refused("validation_failed", f"unknown status {status!r}")
        return {
            "id": next(self._result_ids),
            "test_case_id": case_id,
            "configuration_id": configuration,
            "status": status,
            "description": item["test_result"].get("description") or "",
            "created_at": _now_iso(self._clock()),
        }

    def _add_result(self, request: Request, params: dict[str, str]) -> Response:
        run = self._run(params)
        result = self._record(run, self._body(request))
        run.cases[(str(result["test_case_id"]), result["configuration_id"])].results.append(result)
        return Response.of_json(200, {"success": True, "test-result": result})

    def _add_results(self, request: Request, params: dict[str, str]) -> Response:
        """Undocumented: absent (404 like any unknown path), or present with one of two plausible bodies."""
        variant = self.behaviour.bs_bulk_results
        if variant == "absent":
            return self.error(404, f"Not Found: {request.method} {request.path}")
        run = self._run(params)
        key = "results" if variant == "other_body" else "test_results"
        items = self._body(request).get(key)
        if not isinstance(items, list) or not items:
            raise _Refused("validation_failed", f"{key} must be a non-empty array")
        if len({item.get("test_case_id") for item in items if isinstance(item, dict)}) > MAX_BULK_CASES:
            raise _Refused("max_test_cases_per_request_exceeded", f"At most {MAX_BULK_CASES} test cases per call")
        # All or nothing: every result is checked before any is recorded.
        results = [self._record(run, item) for item in items]
        for result in results:
            run.cases[(str(result["test_case_id"]), result["configuration_id"])].results.append(result)
        return Response.of_json(200, {"success": True, "test-results": results})

    def snapshot(self) -> dict[str, Any]:
        return {
            "projects": {
                project_id: {
                    "name": project.name,
                    "test_cases": [case.model_dump() for case in project.cases],
                    "test_runs": {
                        run_id: {
                            **self._run_view(run),
                            "pending_updates": len(run.pending),
                            "test_cases": [
                                {**self._case_view(rc, project_id), "results": list(rc.results)}
                                for rc in run.cases.values()
                            ],
                        }
                        for run_id, run in self._runs[project_id].items()
                    },
                }
                for project_id, project in self._seed.bs_projects.items()
            },
        }
