"""Testsigma app API: trigger a test plan, read a run's status and its test-case results."""

from __future__ import annotations

from typing import Any

from testrelay.models.execution import ExecutionStatus
from testrelay.vendors.http import VendorSession

FINISHED_STATUS = "STATUS_COMPLETED"


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

    def status(self, run_id: int) -> ExecutionStatus:
        answer = self.http.request("GET", f"/execution_results/{run_id}")
        status = str(answer.get("status") or "")
        return ExecutionStatus(
            run_id=run_id,
            status=status,
            result=str(answer.get("result") or ""),
            finished=status == FINISHED_STATUS,
            message=answer.get("message"),
        )

    def case_results(self, run_id: int) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.request("GET", f"/execution_results/{run_id}/test_case_results")
        return answer
