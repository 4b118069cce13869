"""From Testsigma's case results to what each target and the CI are told."""

from __future__ import annotations

from testrelay.models import routes
from testrelay.models.execution import CaseResult, CaseStatus, RunCounts
from testrelay.relay.collect import _case_results
from testrelay.relay.report import summarise
from testrelay.relay.write_back import merge_for_target

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
    results = list(_case_results(answer))
    # Then every iteration and machine counts, with Testsigma's result mapped to a relay status
    assert [(r.case_id, r.name, r.status, r.machine) for r in results] == [
        (1, "login [iteration 1]", CaseStatus.PASSED, None),
        (1, "login [iteration 2]", CaseStatus.FAILED, None),
        (2, "cart", CaseStatus.PASSED, "Chrome"),
        (2, "cart", CaseStatus.BLOCKED, "Firefox"),
    ]


def test_the_worst_result_of_a_case_wins_and_unmatched_ones_are_kept() -> None:
    results = [
        _result(1, "SUCCESS", "Chrome"),
        _result(1, "FAILURE", "Firefox"),
        _result(2, "PASSED"),
        _result(3, "FAILURE"),
    ]
    cases, unmatched = merge_for_target(results, TARGET)
    assert {case_id: case.status for case_id, case in cases.items()} == {
        "tm-1": CaseStatus.FAILED,
        "tm-2": CaseStatus.PASSED,
    }
    assert cases["tm-1"].lines == ["case 1: SUCCESS on Chrome", "case 1: FAILURE on Firefox"]
    assert [r.case_id for r in unmatched] == [3]


def test_a_target_can_override_the_status_mapping() -> None:
    strict = TARGET.model_copy(update={"result_map": {"NOT_EXECUTED": CaseStatus.FAILED}})
    cases, _ = merge_for_target([_result(1, "NOT_EXECUTED")], strict)
    assert cases["tm-1"].status is CaseStatus.FAILED


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
        "2 passed, 0 failed; write-back failed: tm",
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
