"""Testsigma app API (`/testsigma/api/v1`): trigger a test plan, watch its run, read and override results."""

from __future__ import annotations

import itertools
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_args

from testrelay_local.sandbox.messages import MalformedBody, Request, Response
from testrelay_local.sandbox.seed import PASSED_RESULTS, CaseResult, PlanCaseSeed, PlanSeed, SandboxSeed
from testrelay_local.sandbox.vendor import VendorApi

COMPLETED = "STATUS_COMPLETED"
QUEUED = "QUEUED"
# Upper bound of each status, as a share of the run duration elapsed since the trigger.
_PHASES = (
    (0.10, "STATUS_CREATED"),
    (0.25, "STATUS_QUEUED"),
    (0.40, "STATUS_PRE_FLIGHT"),
    (1.00, "STATUS_IN_PROGRESS"),
)
_COUNT_OF_RESULT = {
    "SUCCESS": "passedCount",
    "PASSED": "passedCount",
    "FAILURE": "failedCount",
    "FAILED": "failedCount",
    "ABORTED": "abortedCount",
    "STOPPED": "stoppedCount",
    "NOT_EXECUTED": "notExecutedCount",
    "QUEUED": "queuedCount",
}
_COUNT_FIELDS = (
    "totalCount",
    "failedCount",
    "passedCount",
    "abortedCount",
    "stoppedCount",
    "notExecutedCount",
    "preRequisiteFailedCount",
    "queuedCount",
)
_VALID_RESULTS = frozenset(get_args(CaseResult))
# The override call's values: Testsigma's result enum (the document's example sends SUCCESS); the
# PASSED/FAILED spellings of newer pages are accepted only with behaviour.ts_override_spellings = "both".
OVERRIDE_ENUM = frozenset({"SUCCESS", "FAILURE", "ABORTED", "NOT_EXECUTED", "QUEUED", "STOPPED"})
_OVERRIDE_BOTH = OVERRIDE_ENUM | {"PASSED", "FAILED"}
_EXECUTION_DETAILS = {
    "page_timeout": 30,
    "element_timeout": 30,
    "recovery_action": "Run_Next_Testcase",
    "on_aborted_action": "Reuse_Session",
    "screenshot_option": "FAILED_STEPS",
    "group_prerequisite_fail": "Abort",
    "test_case_prerequisite_fail": "Abort",
    "test_step_prerequisite_fail": "Run_Next_Testcase",
    "global_param_name": None,
}
_EXECUTED_BY = 43
_MACHINE_ID = 501
_MACHINE_TITLE = "Chrome 126 on Windows 11"
# The run listing's page (Spring's Pageable: Testsigma's own server pages lists by 50).
_LIST_PAGE_SIZE = 50
_LIST_MAX_PAGE_SIZE = 200


@dataclass
class _CaseRun:
    case: PlanCaseSeed
    result_id: int
    suite_result_id: int
    iteration_ids: list[int]
    result: str
    overrides: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Run:
    id: int
    plan_id: int
    plan: PlanSeed
    started_at: float
    build_no: str | None
    environment_id: int | None
    runtime_data: Any
    machine_result_id: int
    cases: list[_CaseRun]
    duration: float


def _number(value: Any, name: str) -> int:
    """Testsigma takes ids as JSON numbers or numeric strings (its own cURL samples send strings)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise MalformedBody(f"{name} must be a number, got {value!r}")


class TestsigmaApi(VendorApi):
    name = "testsigma"
    prefix = "/testsigma/api/v1"

    def __init__(
        self,
        seed: SandboxSeed,
        run_duration: float,
        clock: Callable[[], float] = time.time,
        duration_of: Callable[[int], float] | None = None,
    ) -> None:
        """`duration_of`: how long the next run of a plan takes (default: `run_duration` seconds)."""
        super().__init__()
        self._seed = seed
        self._duration_of = duration_of or (lambda _plan: run_duration)
        self._clock = clock
        self._runs: dict[int, _Run] = {}
        self._run_ids = itertools.count(1001)
        self._result_ids = itertools.count(50001)
        self.router.add("POST", "/execution_results", self._trigger)
        self.router.add("GET", "/execution_results", self._list)
        self.router.add("GET", "/execution_results/{run_id}", self._status)
        self.router.add("GET", "/execution_results/{run_id}/test_case_results", self._case_results)
        self.router.add("PUT", "/execution_results/{run_id}/override", self._override)
        self.router.add("GET", "/reports/junit/{run_id}", self._junit)
        self.router.add("GET", "/saved_execution_configs", self._saved_configs)

    def authorized(self, request: Request) -> bool:
        return request.credentials("Bearer") == self._seed.testsigma_api_key

    def error(self, status: int, message: str) -> Response:
        return Response.of_json(
            status, {"timeStamp": None, "error": message, "code": None, "fieldErrors": None, "objectErrors": None}
        )

    def _saved_configs(self, _request: Request, _: dict[str, str]) -> Response:
        # The documented answer is a bare list; the sandbox's plans carry no saved configurations.
        return Response.of_json(200, [])

    def _trigger(self, request: Request, _: dict[str, str]) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise MalformedBody("the request body must be a JSON object")
        if body.get("executionId") is None:
            raise MalformedBody("executionId (the test plan id) is required")
        plan_id = _number(body["executionId"], "executionId")
        environment_id = None
        if body.get("environmentId") is not None:
            environment_id = _number(body["environmentId"], "environmentId")
        runtime_data = body.get("runtimeData")
        if runtime_data is not None and not isinstance(runtime_data, dict):
            raise MalformedBody("runtimeData must be a JSON object")
        plan = self._seed.test_plans.get(plan_id)
        if plan is None:
            return self.error(404, f"Test plan not found with id {plan_id}")
        if environment_id is not None and self._seed.environments and environment_id not in self._seed.environments:
            return self.error(404, f"Environment not found with id {environment_id}")
        build_no = body.get("buildNo")
        run = _Run(
            id=next(self._run_ids),
            plan_id=plan_id,
            plan=plan,
            started_at=self._clock(),
            build_no=None if build_no is None else str(build_no),
            environment_id=environment_id,
            runtime_data=runtime_data,
            machine_result_id=next(self._result_ids),
            cases=[],
            duration=self._duration_of(plan_id),
        )
        suite_result_ids: dict[int, int] = {}
        for case in plan.cases:
            if case.testSuiteId not in suite_result_ids:
                suite_result_ids[case.testSuiteId] = next(self._result_ids)
            run.cases.append(
                _CaseRun(
                    case=case,
                    result_id=next(self._result_ids),
                    suite_result_id=suite_result_ids[case.testSuiteId],
                    iteration_ids=[next(self._result_ids) for _ in case.iterations],
                    result=case.result,
                )
            )
        self._runs[run.id] = run
        # The trigger answer always shows a freshly created run, as Testsigma documents it.
        view = self._run_view(run, "STATUS_CREATED")
        view["execution"] = None
        return Response.of_json(200, view)

    def _list(self, request: Request, _: dict[str, str]) -> Response:
        """A listing of runs: no document gives one, so `behaviour.ts_run_listing` says which variant
        this account shows (absent by default). Items are the status view without the plan."""
        listing = self.behaviour.ts_run_listing
        if listing == "absent":
            return self.error(405, "Request method 'GET' not supported")
        runs = sorted(self._runs.values(), key=lambda run: run.id, reverse=True)
        if listing == "filtered":
            plan, build_no = request.query.get("executionId"), request.query.get("buildNo")
            if plan is not None:
                runs = [run for run in runs if str(run.plan_id) == plan]
            if build_no is not None:
                runs = [run for run in runs if run.build_no == build_no]
        page, size = request.query.get("page", "0"), request.query.get("size", str(_LIST_PAGE_SIZE))
        if not page.isdigit() or not size.isdigit() or int(size) < 1:
            raise MalformedBody("page must be a number from 0 and size a number from 1")
        number, size_n = int(page), min(int(size), _LIST_MAX_PAGE_SIZE)
        content = []
        for run in runs[number * size_n : (number + 1) * size_n]:
            view = self._run_view(run, self._phase(run))
            view["execution"] = None
            content.append(view)
        pages = (len(runs) + size_n - 1) // size_n
        return Response.of_json(
            200,
            {
                "content": content,
                "totalElements": len(runs),
                "totalPages": pages,
                "number": number,
                "size": size_n,
                "numberOfElements": len(content),
                "first": number == 0,
                "last": number + 1 >= pages,
            },
        )

    def _find(self, run_id: str) -> _Run | None:
        return self._runs.get(int(run_id)) if run_id.isdigit() else None

    def _not_found(self, run_id: str) -> Response:
        return self.error(404, f"Test plan result not found with id {run_id}")

    def _status(self, _: Request, params: dict[str, str]) -> Response:
        run = self._find(params["run_id"])
        if run is None:
            return self._not_found(params["run_id"])
        return Response.of_json(200, self._run_view(run, self._phase(run)))

    def _case_results(self, request: Request, params: dict[str, str]) -> Response:
        run = self._find(params["run_id"])
        if run is None:
            return self._not_found(params["run_id"])
        status = self._phase(run)
        done = status == COMPLETED
        cases = run.cases
        # Spring-style paging (`page` from 0, `size`) when asked; the whole list otherwise.
        if "size" in request.query:
            page, size = request.query.get("page", "0"), request.query["size"]
            if not page.isdigit() or not size.isdigit() or int(size) < 1:
                raise MalformedBody("page must be a number from 0 and size a number from 1")
            cases = cases[int(page) * int(size) : (int(page) + 1) * int(size)]
        return Response.of_json(
            200,
            {
                "executionId": run.plan_id,
                "executionResultId": run.id,
                "result": self._run_result(run) if done else QUEUED,
                "status": status,
                "testCases": [self._case_view(run, case_run, done) for case_run in cases],
            },
        )

    def _override(self, request: Request, params: dict[str, str]) -> Response:
        run = self._find(params["run_id"])
        if run is None:
            return self._not_found(params["run_id"])
        body = request.json()
        if not isinstance(body, list) or not body:
            raise MalformedBody("the request body must be a non-empty JSON array of overrides")
        by_result_id = {case_run.result_id: case_run for case_run in run.cases}
        errors: list[str] = []
        accepted: list[tuple[_CaseRun, str, Any]] = []
        for item in body:
            if not isinstance(item, dict):
                errors.append(f"Given override {item!r} is not an object")
                continue
            result_id = item.get("testCaseResultId")
            result = item.get("result")
            case_run = by_result_id.get(result_id) if isinstance(result_id, int) else None
            if case_run is None:
                errors.append(f"Given test case result id {result_id} is not related to execution run {run.id}")
            elif result not in (OVERRIDE_ENUM if self.behaviour.ts_override_spellings == "enum" else _OVERRIDE_BOTH):
                errors.append(f"Given result {result!r} is not valid for test case result id {result_id}")
            else:
                accepted.append((case_run, str(result), item.get("comment")))
        if not accepted:
            return self.error(400, "Failed to override the result, \n cause :" + " \n ".join(errors))
        for case_run, result, comment in accepted:
            case_run.overrides.append({"from": case_run.result, "result": result, "comment": comment})
            case_run.result = result
        message = "Overridden the result partially" if errors else "Overridden the results successfully"
        return Response.of_json(200, {"errors": errors, "message": message})

    def _junit(self, _: Request, params: dict[str, str]) -> Response:
        run = self._find(params["run_id"])
        if run is None:
            return self._not_found(params["run_id"])
        done = self._phase(run) == COMPLETED
        results = [case_run.result if done else QUEUED for case_run in run.cases]
        failed = sum(result in ("FAILURE", "FAILED") for result in results)
        errored = sum(result in ("ABORTED", "STOPPED") for result in results)
        skipped = len(results) - failed - errored - sum(result in PASSED_RESULTS for result in results)
        root = ET.Element(
            "testsuites",
            name=run.plan.name,
            tests=str(len(results)),
            failures=str(failed),
            errors=str(errored),
            skipped=str(skipped),
        )
        suites: dict[int, ET.Element] = {}
        for case_run, result in zip(run.cases, results, strict=True):
            case = case_run.case
            if case.testSuiteId not in suites:
                suites[case.testSuiteId] = ET.SubElement(
                    root, "testsuite", name=case.testSuiteName, id=str(case.testSuiteId)
                )
            testcase = ET.SubElement(
                suites[case.testSuiteId], "testcase", classname=case.testSuiteName, name=case.testCaseName, time="0"
            )
            if result in ("FAILURE", "FAILED"):
                ET.SubElement(testcase, "failure", message=result, type=result)
            elif result in ("ABORTED", "STOPPED"):
                ET.SubElement(testcase, "error", message=result, type=result)
            elif result not in PASSED_RESULTS:
                ET.SubElement(testcase, "skipped", message=result)
        for suite in suites.values():
            suite.set("tests", str(len(suite)))
            suite.set("failures", str(sum(len(c.findall("failure")) for c in suite)))
        xml = ET.tostring(root, encoding="unicode", xml_declaration=True)
        return Response.of_text(200, xml, "application/xml")

    def _phase(self, run: _Run) -> str:
        if run.duration <= 0:
            return COMPLETED
        progress = (self._clock() - run.started_at) / run.duration
        return next((status for upper, status in _PHASES if progress < upper), COMPLETED)

    @staticmethod
    def _run_result(run: _Run) -> str:
        return "SUCCESS" if all(case_run.result in PASSED_RESULTS for case_run in run.cases) else "FAILURE"

    def _run_view(self, run: _Run, status: str) -> dict[str, Any]:
        done = status == COMPLETED
        counts = dict.fromkeys(_COUNT_FIELDS, 0)
        if done:
            counts["totalCount"] = len(run.cases)
            for case_run in run.cases:
                counts[_COUNT_OF_RESULT[case_run.result]] += 1
        result = self._run_result(run) if done else QUEUED
        if done:
            message = "Test plan executed successfully" if result == "SUCCESS" else "Test plan execution failed"
        elif status == "STATUS_CREATED":
            message = "Test Plan execution is initiated and waiting to be queued"
        else:
            message = "Test plan execution is in progress"
        start_ms = int(run.started_at * 1000)
        duration_ms = int(run.duration * 1000)
        return {
            "id": run.id,
            "execution": self._plan_view(run),
            "executionId": run.plan_id,
            "startTime": start_ms,
            "endTime": start_ms + duration_ms if done else None,
            "duration": duration_ms if done else None,
            "result": result,
            "status": status,
            "message": message,
            "executedBy": _EXECUTED_BY,
            "buildNo": run.build_no,
            "environmentId": run.environment_id,
            **counts,
            "isVisuallyPassed": None,
            "environment": None,
            "childResult": None,
            "reRunParentId": None,
            "reRunType": None,
            "triggeredType": "API",
            "totalRunningCount": 0 if done or status == "STATUS_CREATED" else len(run.cases),
            "executionDetails": dict(_EXECUTION_DETAILS),
            "totalQueuedCount": 0,
        }

    def _plan_view(self, run: _Run) -> dict[str, Any]:
        latest_run = max(other.id for other in self._runs.values() if other.plan_id == run.plan_id)
        return {
            "id": run.plan_id,
            "name": run.plan.name,
            "description": run.plan.description,
            "environmentId": None,
            "screenshot": "FAILED_STEPS",
            "recoveryAction": "Run_Next_Testcase",
            "onAbortedAction": "Reuse_Session",
            "reRunType": "NONE",
            "executionLabType": "TestsigmaLab",
            "executionType": "CROSS_BROWSER",
            "isManual": False,
            "lastRunId": latest_run,
        }

    def _case_view(self, run: _Run, case_run: _CaseRun, done: bool) -> dict[str, Any]:
        case = case_run.case
        return {
            "testCaseId": case.testCaseId,
            "testCaseName": case.testCaseName,
            "testCaseResultId": case_run.result_id,
            "result": case_run.result if done else QUEUED,
            "isDataDrivenCase": case.isDataDrivenCase,
            "iterationResults": [
                {
                    "id": iteration_id,
                    "parentId": case_run.result_id,
                    "iteration": iteration.iteration,
                    "result": iteration.result if done else QUEUED,
                }
                for iteration_id, iteration in zip(case_run.iteration_ids, case.iterations, strict=True)
            ],
            "testSuiteId": case.testSuiteId,
            "testSuiteName": case.testSuiteName,
            "testSuiteResultId": case_run.suite_result_id,
            "machineId": _MACHINE_ID,
            "machineTitle": _MACHINE_TITLE,
            "machineResultId": run.machine_result_id,
        }

    def snapshot(self) -> dict[str, Any]:
        runs: dict[str, Any] = {}
        for run in self._runs.values():
            status = self._phase(run)
            done = status == COMPLETED
            runs[str(run.id)] = {
                "id": run.id,
                "executionId": run.plan_id,
                "status": status,
                "result": self._run_result(run) if done else QUEUED,
                "buildNo": run.build_no,
                "environmentId": run.environment_id,
                "runtimeData": run.runtime_data,
                "startTime": int(run.started_at * 1000),
                "duration_seconds": run.duration,
                "cases": [
                    {
                        "testCaseId": case_run.case.testCaseId,
                        "testCaseName": case_run.case.testCaseName,
                        "testCaseResultId": case_run.result_id,
                        "result": case_run.result if done else QUEUED,
                        "final_result": case_run.result,
                        "overrides": list(case_run.overrides),
                    }
                    for case_run in run.cases
                ],
            }
        return {
            "test_plans": {str(plan_id): plan.model_dump() for plan_id, plan in self._seed.test_plans.items()},
            "environments": {str(env_id): env.model_dump() for env_id, env in self._seed.environments.items()},
            "runs": runs,
        }
