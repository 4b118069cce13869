"""From Testsigma's case results to what each target and the CI are told."""

from __future__ import annotations

from testrelay.models import routes
from testrelay.models.execution import CaseResult, CaseStatus, RunCounts
from testrelay.relay.collect import _case_results
from testrelay.relay.report import summarise
from testrelay.sync.batching import merge_results
from testrelay.sync.matching import CaseCatalog, CaseMatcher

TARGET = routes.TestsigmaTmTarget(
    kind="testsigma_tm",
    project_id="p",
    status_ids={
        CaseStatus.PASSED: "s-pass",
        CaseStatus.FAILED: "s-fail",
        CaseStatus.BLOCKED: "s-block",
        CaseStatus.UNTESTED: "s-untested",
    },
    case_map={1: "tm-1", 2: "tm-2"},
)


def merge_for_target(results: list[CaseResult], target: routes.TestsigmaTmTarget) -> dict[str, dict[str, object]]:
    merged = merge_results(results, CaseMatcher(target, CaseCatalog), target.status_for)
    return {entry["case"]: entry for entry in merged.entries()} | {"unmatched": {"cases": merged.unmatched_cases}}


def _result(case_id: int, result: str, machine: str | None = None) -> CaseResult:
    return CaseResult(case_id=case_id, name=f"case {case_id}", result=result, status=CaseStatus.PASSED, machine=machine)


def test_data_driven_iterations_and_machines_each_become_a_result() -> None:
    # Given a data-driven case with two iterations and a plain case run on two machines
    answer = {
        "testCases": [
            {
                "testCaseId": 1,
                "testCaseName": "login",
                "result": "FAILURE",
                "isDataDrivenCase": True,
                "iterationResults": [{"result": "SUCCESS", "testCaseResultId": 11}, {"result": "FAILURE"}],
            },
            {"testCaseId": 2, "testCaseName": "cart", "result": "SUCCESS", "machineTitle": "Chrome"},
            {"testCaseId": 2, "testCaseName": "cart", "result": "ABORTED", "machineTitle": "Firefox"},
        ]
    }
    # When they are read
    results = [result for case in answer["testCases"] for result in _case_results(case)]
    # Then every iteration and machine counts, with Testsigma's result mapped to a relay status
    assert [(r.case_id, r.label, r.status, r.machine) for r in results] == [
        (1, "login [iteration 1]: SUCCESS", CaseStatus.PASSED, None),
        (1, "login [iteration 2]: FAILURE", CaseStatus.FAILED, None),
        (2, "cart: SUCCESS on Chrome", CaseStatus.PASSED, "Chrome"),
        (2, "cart: ABORTED on Firefox", CaseStatus.BLOCKED, "Firefox"),
    ]


def test_the_worst_result_of_a_case_wins_and_unmatched_ones_are_kept() -> None:
    results = [
        _result(1, "SUCCESS", "Chrome"),
        _result(1, "FAILURE", "Firefox"),
        _result(2, "PASSED"),
        _result(3, "FAILURE"),
    ]
    cases = merge_for_target(results, TARGET)
    assert {case_id: case.get("status") for case_id, case in cases.items() if case_id != "unmatched"} == {
        "tm-1": "failed",
        "tm-2": "passed",
    }
    assert cases["tm-1"]["description"] == "case 1: SUCCESS on Chrome; case 1: FAILURE on Firefox"
    assert cases["unmatched"]["cases"] == ["3 case 3: FAILURE"]


def test_a_target_can_override_the_status_mapping() -> None:
    strict = TARGET.model_copy(update={"result_map": {"NOT_EXECUTED": CaseStatus.FAILED}})
    cases = merge_for_target([_result(1, "NOT_EXECUTED")], strict)
    assert cases["tm-1"]["status"] == "failed"


def test_summary_reads_like_the_ci_expects() -> None:
    counts = RunCounts(total=51, passed=47, failed=3, untested=1)
    assert summarise(counts, []) == ("failure", "47 passed, 3 failed, 1 not run")
    clean = RunCounts(total=2, passed=2)
    assert summarise(clean, [{"target": "tm", "status": "written", "unmatched": 1}]) == (
        "success",
        "2 passed, 0 failed; 1 unmatched",
    )
    assert summarise(clean, [{"target": "tm", "status": "failed"}]) == (
        "error",
        "results not written: tm; 2 passed, 0 failed",
    )


def test_counts_are_test_cases_with_their_worst_iteration_per_machine() -> None:
    def result(case_id: int, status: CaseStatus, machine: str | None = None) -> CaseResult:
        return CaseResult(case_id=case_id, name="n", result="X", status=status, machine=machine)

    counts = RunCounts.of_cases(
        [
            result(1, CaseStatus.PASSED),
            result(1, CaseStatus.FAILED),  # a second iteration of case 1
            result(2, CaseStatus.PASSED, "Chrome"),
            result(2, CaseStatus.PASSED, "Firefox"),
            result(3, CaseStatus.UNTESTED),
        ]
    )
    assert counts.model_dump() == {"total": 4, "passed": 2, "failed": 1, "blocked": 0, "skipped": 0, "untested": 1}
