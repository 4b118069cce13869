"""Testsigma app API: trigger a test plan, read a run's status and its test-case results."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from testrelay.errors import VendorRejected
from testrelay.models.execution import ExecutionStatus

if TYPE_CHECKING:  # the routes model imports this module's enums; the webhook never calls a vendor
    from testrelay.vendors.http import VendorSession

FINISHED_STATUS = "STATUS_COMPLETED"

RUN_MARKER_KEY = "testrelay_job_id"
"""The `runtimeData` key under which the relay leaves the job id on every run it triggers."""

NO_LISTING = frozenset({404, 405, 501})
"""What an account without a run listing answers `GET /execution_results` (the document gives none)."""

OVERRIDE_RESULTS: tuple[str, ...] = ("SUCCESS", "FAILURE", "ABORTED", "NOT_EXECUTED", "QUEUED", "STOPPED")
"""Testsigma's result enum: the values `PUT /execution_results/<run_id>/override` may set (and the
values a run's results take). For validating a routes file's `overrides` (values, and keys too)."""

RESULT_SPELLINGS: dict[str, str] = {"PASSED": "SUCCESS", "FAILED": "FAILURE"}
"""Newer Testsigma pages show PASSED/FAILED for SUCCESS/FAILURE: read both, send only the enum's."""


def override_result(value: str) -> str:
    """The enum value to send for a result name (PASSED -> SUCCESS, FAILED -> FAILURE, case-insensitive);
    raises ValueError naming the allowed values for anything outside Testsigma's enum."""
    upper = value.strip().upper()
    result = RESULT_SPELLINGS.get(upper, upper)
    if result not in OVERRIDE_RESULTS:
        allowed = ", ".join(OVERRIDE_RESULTS)
        raise ValueError(f"{value!r} is not a Testsigma result; allowed: {allowed} (PASSED/FAILED also accepted)")
    return result


def _seconds(millis: Any) -> float | None:
    """Testsigma gives times and durations in milliseconds; anything but a positive number is unknown."""
    if isinstance(millis, bool) or not isinstance(millis, int | float) or not 0 < millis < 1e15:
        return None
    # A denormal count of milliseconds is positive but rounds to 0 seconds: unknown as well.
    seconds = float(millis) / 1000
    return seconds if seconds > 0 else None


def _run_duration(answer: dict[str, Any]) -> float | None:
    """The documented `duration`, else `endTime - startTime`."""
    duration = _seconds(answer.get("duration"))
    if duration is not None:
        return duration
    start, end = _seconds(answer.get("startTime")), _seconds(answer.get("endTime"))
    return end - start if start is not None and end is not None and end > start else None


CasePage = dict[str, Any]
"""Where `case_result_pages` goes on: `page` (from 0) and `first` (the previous page's first case result id)."""


class TestsigmaClient:
    def __init__(self, session: VendorSession) -> None:
        self.http = session

    def trigger(
        self,
        test_plan_id: int,
        environment_id: int | None = None,
        build_number: str | None = None,
        runtime_data: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"executionId": test_plan_id}
        if environment_id is not None:
            body["environmentId"] = environment_id
        if build_number:
            body["buildNo"] = build_number
        if runtime_data:
            body["runtimeData"] = runtime_data
        answer: dict[str, Any] = self.http.request("POST", "/execution_results", json=body)
        return answer

    def find_runs(
        self,
        test_plan_id: int,
        build_number: str,
        job_id: str,
        *,
        since_ms: int = 0,
        page_size: int = 50,
        max_pages: int = 20,
    ) -> list[dict[str, Any]] | None:
        """The plan's runs that carry this job's marker (its `buildNo`, or the job id in `runtimeData`),
        newest first; None when the account offers no run listing.

        The trigger/status document gives no way to list runs, so `GET /execution_results` is detected:
        absent (404/405), a listing that honours `executionId`/`buildNo`, or one that ignores the query.
        Whatever the server does with the filters, every item is checked here; the walk stops at a
        short or empty page, at a page older than `since_ms` (listings are newest first), or after
        `max_pages` pages."""
        found: list[dict[str, Any]] = []
        for page in range(max_pages):
            params = {"executionId": test_plan_id, "buildNo": build_number, "page": page, "size": page_size}
            try:
                answer = self.http.request("GET", "/execution_results", params=params)
            except VendorRejected as refused:
                if page == 0 and refused.status in NO_LISTING:
                    return None
                raise
            items = answer.get("content") if isinstance(answer, dict) else answer
            if not isinstance(items, list):
                return None if page == 0 else found
            runs = [item for item in items if isinstance(item, dict)]
            found.extend(run for run in runs if _marked(run, test_plan_id, build_number, job_id))
            starts = [start for run in runs if isinstance(start := run.get("startTime"), int)]
            if found or len(items) < page_size or (starts and max(starts) < since_ms):
                break
            if isinstance(answer, dict) and answer.get("last") is True:
                break
        return found

    def run_view(self, run_id: int) -> dict[str, Any] | None:
        """The run's status view (`GET /execution_results/<run_id>`); None when there is no such run."""
        try:
            answer = self.http.request("GET", f"/execution_results/{run_id}")
        except VendorRejected as refused:
            if refused.status == 404:
                return None
            raise
        return answer if isinstance(answer, dict) else None

    def find_run_after(
        self, test_plan_id: int, build_number: str, job_id: str, seen_run: int, max_reads: int = 20
    ) -> tuple[int | None, bool]:
        """The run this job started after `seen_run` (a run of the plan seen before triggering), looked
        up the documented way: a run's status view carries `execution.lastRunId`, the plan's latest
        run, and run ids increase. The latest is checked first (its `buildNo` marker), then the runs
        back to `seen_run`, which covers someone else triggering the plan meanwhile.

        Answers (run id, True) when found; (None, True) when every run since `seen_run` was checked and
        none is this job's; (None, False) when it cannot tell (`seen_run` gone or not of this plan, no
        `lastRunId`, or more than `max_reads` runs to check)."""
        seen = self.run_view(seen_run)
        execution = (seen or {}).get("execution")
        if seen is None or not isinstance(execution, dict) or str(execution.get("id")) != str(test_plan_id):
            return None, False
        latest = execution.get("lastRunId")
        if not isinstance(latest, int) or isinstance(latest, bool) or latest < seen_run:
            return None, False
        for reads, run_id in enumerate(range(latest, seen_run - 1, -1)):
            if reads >= max_reads:
                return None, False
            view = seen if run_id == seen_run else self.run_view(run_id)
            if view is not None and _marked(view, test_plan_id, build_number, job_id):
                return run_id, True
        return None, True

    def status(self, run_id: int) -> ExecutionStatus:
        answer = self.http.request("GET", f"/execution_results/{run_id}")
        if not isinstance(answer, dict):
            raise VendorRejected("testsigma", f"run {run_id}: the status answer is not a JSON object")
        status = str(answer.get("status") or "")
        message = answer.get("message")
        return ExecutionStatus(
            run_id=run_id,
            status=status,
            result=str(answer.get("result") or ""),
            finished=status == FINISHED_STATUS,
            message=None if message is None else str(message),
            started_at=_seconds(answer.get("startTime")),
            duration_seconds=_run_duration(answer) if status == FINISHED_STATUS else None,
        )

    def case_results(self, run_id: int) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.request("GET", f"/execution_results/{run_id}/test_case_results")
        return answer

    def override_results(self, run_id: int, overrides: list[dict[str, Any]]) -> dict[str, Any]:
        """`PUT /execution_results/<run_id>/override`; a 200 may list `errors` (partial success). Not
        repeated blindly on a time-out or 5xx after sending (each override appends to the case's
        history): those raise VendorOutcomeUnknown and the caller reads the case results back."""
        answer: dict[str, Any] = (
            self.http.request("PUT", f"/execution_results/{run_id}/override", json=overrides, repeatable=False) or {}
        )
        return answer

    def case_result_pages(self, run_id: int, page_size: int) -> Iterator[dict[str, Any]]:
        """The run's case results a page at a time (`page` from 0, `size`).

        A server that ignores the parameters answers the whole list every time: a page repeating the
        previous one's first case, or a short page, ends the walk, so nothing is read twice."""
        position: CasePage | None = {"page": 0}
        while position is not None:
            answer, position = self.case_result_page(run_id, page_size, position)
            if answer is not None:
                yield answer

    def case_result_page(
        self, run_id: int, page_size: int, position: CasePage
    ) -> tuple[dict[str, Any] | None, CasePage | None]:
        """One page of `case_result_pages`: the answer (None past the end) and the next page's
        position (None after the last), plain JSON so a page that fails is read again on its own."""
        page = int(position["page"])
        answer = self.http.request(
            "GET", f"/execution_results/{run_id}/test_case_results", params={"page": page, "size": page_size}
        )
        cases = answer.get("testCases") or []
        first = cases[0].get("testCaseResultId") if cases else None
        if page and (not cases or first == position.get("first")):
            return None, None
        if len(cases) < page_size:
            return answer, None
        return answer, {"page": page + 1, "first": first}


def _marked(run: dict[str, Any], test_plan_id: int, build_number: str, job_id: str) -> bool:
    if str(run.get("executionId")) != str(test_plan_id):
        return False
    runtime_data = run.get("runtimeData")
    if isinstance(runtime_data, dict) and runtime_data.get(RUN_MARKER_KEY) == job_id:
        return True
    return run.get("buildNo") == build_number


def marked_build_number(build_number: str, job_id: str) -> str:
    """The `buildNo` the relay sends: the route's build number with the job id, so a run it started can
    be recognised on any view of the run (the status view shows `buildNo`, not `runtimeData`)."""
    marker = f"testrelay {job_id}"
    return f"{build_number} [{marker}]" if build_number else marker
