"""The real relay.asl.json, executed by moto's interpreter with the real task handlers, against the
vendor sandbox: the success path, throttling that clears, and vendor failures."""

from __future__ import annotations

import json
from typing import Any

from testrelay_local.runtime import LocalRuntime
from testrelay_local.sandbox import DEMO_TM_CASES, DEMO_TM_STATUSES
from tests.support import commit_statuses, demo_job, history, ledger, run_job, tm_run_cases

EXPECTED_TM_STATUSES = {
    "TC-101": "Passed",
    "TC-102": "Passed",
    "TC-103": "Failed",
    "TC-104": "Passed",  # data-driven: both iterations passed
    "TC-105": "Untested",  # NOT_EXECUTED
    "TC-106": "Passed",
}


def _only_run(runtime: LocalRuntime) -> dict[str, Any]:
    runs = tm_run_cases(runtime)
    assert len(runs) == 1, runs.keys()
    return next(iter(runs.values()))


def test_a_job_triggers_polls_writes_back_and_reports(runtime: LocalRuntime) -> None:
    # Given the demo route and a Testsigma run that takes a few polls
    job = demo_job()
    # When the job goes through the queue
    execution = run_job(runtime, job)
    # Then the execution succeeds after polling more than once
    assert execution["status"] == "SUCCEEDED"
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in history(runtime, execution["executionArn"])
        if "stateEnteredEventDetails" in e
    ]
    assert entered[0] == "TriggerPlan"
    assert entered.count("PollStatus") >= 2
    assert "WaitForRun" in entered
    assert entered[-6:] == ["WriteTarget", "TargetDone?", "TargetWritten", "ReportToCi", "AllWritten?", "Done"]
    # And exactly one Testsigma run of plan 2741 was triggered, with the build number from the template
    state = runtime.sandbox.state() if runtime.sandbox else {}
    runs = state["testsigma"]["runs"]
    # (marked with the job id, so an attempt after a crash finds it instead of triggering again)
    assert [(r["executionId"], r["buildNo"]) for r in runs.values()] == [
        (2741, f"octo-org/octo-repo@3484a3f #163 [testrelay {job.id}]")
    ]
    assert [r["runtimeData"] for r in runs.values()] == [{"testrelay_job_id": job.id}]
    # And one Test Management run holds every mapped case with its status, each written once
    tm_run = _only_run(runtime)
    cases = {case["human_id"]: case for case in tm_run["test_run_cases"]}
    assert {human: case["status_name"] for human, case in cases.items()} == EXPECTED_TM_STATUSES
    assert all(case["update_count"] == 1 for case in cases.values())
    assert cases["TC-103"]["test_case_id"] == DEMO_TM_CASES["TC-103"]
    assert cases["TC-103"]["test_run_status_id"] == DEMO_TM_STATUSES["Failed"]
    assert "iteration 2" in cases["TC-104"]["description"]
    assert tm_run["title"] == "Checkout regression octo-org/octo-repo@3484a3f (Testsigma run 1001)"
    # And the commit got one status: the summary, linking to the Testsigma run
    [final] = commit_statuses(runtime)
    assert (final["state"], final["description"]) == ("failure", "4 passed, 1 failed, 1 not run")
    assert final["context"] == "testrelay/octo-checkout"
    assert final["target_url"].endswith("/ui/td/runs/1001")
    # And the ledger tells the same story
    record = ledger(runtime).get_job(job.id)
    assert record is not None
    assert record["state"] == "reported"
    assert record["summary"] == "4 passed, 1 failed, 1 not run"
    assert record["testsigma_run"]["run_id"] == 1001
    assert ledger(runtime).get_target(job.id, "patient-portal")["state"] == "written"
    output = json.loads(execution["output"])
    assert output["report"] == {
        "state": "failure",
        "description": "4 passed, 1 failed, 1 not run",
        "posted": True,
        "run_url": final["target_url"],
        "job_state": "reported",
    }


def test_throttling_at_every_vendor_still_writes_each_result_exactly_once(runtime: LocalRuntime) -> None:
    # Given Testsigma answering 429 to status polls, and Test Management answering its
    # HTTP 500 "rate limit exceeded" more often than one Lambda invocation retries
    assert runtime.sandbox is not None
    runtime.sandbox.set_faults(
        rules=[
            {
                "vendor": "testsigma",
                "method": "GET",
                "path": r"^/execution_results/\d+$",
                "kind": "throttle",
                "times": 2,
            },
            {"vendor": "testsigma_tm", "method": "PUT", "path": "/test_cases$", "kind": "throttle", "times": 5},
            {"vendor": "github", "method": "POST", "kind": "server_error", "times": 1},
        ]
    )
    job = demo_job()
    # When the job runs
    execution = run_job(runtime, job)
    # Then it succeeds: the session waited out short throttles, and the state machine retried the rest
    assert execution["status"] == "SUCCEEDED"
    events = history(runtime, execution["executionArn"])
    failures = [e["lambdaFunctionFailedEventDetails"]["error"] for e in events if e["type"] == "LambdaFunctionFailed"]
    assert failures == ["VendorThrottled"]  # one WriteTarget attempt gave up; its retry resumed
    requests = runtime.sandbox.state()["requests"]
    assert (
        requests["testsigma_tm"]["PUT /projects/{project_id}/test_runs/{test_run_id}/test_cases"]["faults_injected"]
        == 5
    )
    # And every case was written exactly once, to one run
    tm_run = _only_run(runtime)
    assert {case["human_id"]: case["update_count"] for case in tm_run["test_run_cases"]} == dict.fromkeys(
        EXPECTED_TM_STATUSES, 1
    )
    assert commit_statuses(runtime)[0]["description"] == "4 passed, 1 failed, 1 not run"


def test_a_plan_testsigma_does_not_know_fails_the_job_and_tells_the_ci(runtime: LocalRuntime) -> None:
    # Given a route pointing at a test plan that does not exist
    job = demo_job(testsigma={"test_plan_id": 999999})
    # When it runs
    execution = run_job(runtime, job)
    # Then the execution fails through the failure path, nothing is written, and the CI knows why
    assert execution["status"] == "FAILED"
    assert execution["error"] == "RelayFailed"
    assert tm_run_cases(runtime) == {}
    status = commit_statuses(runtime)[0]
    assert status["state"] == "error"
    assert status["description"].startswith("testrelay: VendorRejected: testsigma: POST /execution_results: HTTP 404")
    record = ledger(runtime).get_job(job.id)
    assert record is not None
    assert record["state"] == "failed"
    assert "HTTP 404" in record["error"]


def test_a_target_that_fails_for_good_fails_the_execution_and_the_ci_says_results_were_not_written(
    runtime: LocalRuntime,
) -> None:
    # Given a target whose Test Management project does not exist
    job = demo_job(targets=[{**demo_job().route.targets[0].model_dump(), "project_id": "no-such-project"}])
    # When the job runs
    execution = run_job(runtime, job)
    # Then the execution ends in the state that says no result was written
    assert (execution["status"], execution["error"]) == ("FAILED", "ResultsNotWritten")
    entered = [
        e["stateEnteredEventDetails"]["name"]
        for e in history(runtime, execution["executionArn"])
        if "stateEnteredEventDetails" in e
    ]
    assert entered[-4:] == ["TargetFailed", "ReportToCi", "AllWritten?", "ResultsNotWritten"]
    # And the CI status is an error that says the results were not written, not "tests failed"
    status = commit_statuses(runtime)[0]
    assert status["state"] == "error"
    assert status["description"] == "results not written: patient-portal; 4 passed, 1 failed, 1 not run"
    # And the ledger keeps the job as failed, with the target's reason
    record = ledger(runtime).get_job(job.id)
    assert record is not None
    assert record["state"] == "failed"
    assert record["error"].startswith("results not written: patient-portal: VendorRejected: ")
    [outcome] = record["targets"]
    assert (outcome["target"], outcome["status"], outcome["error"]) == ("patient-portal", "failed", "VendorRejected")


def test_a_killed_write_back_is_retried_and_the_job_succeeds(runtime: LocalRuntime) -> None:
    # Given a write-back whose first invocation is killed (out of memory or its time-out: Lambda.Unknown)
    runtime.fail_lambda("WriteBackFunction", "Lambda.Unknown", "RequestId: x Error: Runtime exited with signal: killed")
    job = demo_job()
    # When the job runs
    execution = run_job(runtime, job)
    # Then the state machine retried the Task and the job succeeded, every case written once
    assert execution["status"] == "SUCCEEDED"
    events = history(runtime, execution["executionArn"])
    failures = [e["lambdaFunctionFailedEventDetails"]["error"] for e in events if e["type"] == "LambdaFunctionFailed"]
    assert failures == ["Lambda.Unknown"]
    tm_run = _only_run(runtime)
    assert {case["human_id"]: case["update_count"] for case in tm_run["test_run_cases"]} == dict.fromkeys(
        EXPECTED_TM_STATUSES, 1
    )
    [status] = commit_statuses(runtime)
    assert (status["state"], status["description"]) == ("failure", "4 passed, 1 failed, 1 not run")


def test_a_repeated_job_changes_nothing(runtime: LocalRuntime) -> None:
    # Given a job that already ran
    job = demo_job()
    run_job(runtime, job)
    before = runtime.sandbox.state() if runtime.sandbox else {}
    # When the same job is queued again (a redelivered message)
    again = run_job(runtime, job)
    # Then no second execution, run, write or status happened
    assert again["status"] == "SUCCEEDED"
    after = runtime.sandbox.state() if runtime.sandbox else {}
    assert after["testsigma"]["runs"] == before["testsigma"]["runs"]
    assert after["testsigma_tm"] == before["testsigma_tm"]
    assert after["github"] == before["github"]


def test_one_target_written_and_one_not_ends_the_execution_partial(runtime: LocalRuntime) -> None:
    # Given a route with a good target and one whose project does not exist
    good = demo_job().route.targets[0].model_dump()
    job = demo_job(targets=[good, {**good, "name": "elsewhere", "project_id": "no-such-project"}])
    # When the job runs
    execution = run_job(runtime, job)
    # Then the execution ends Partial, the good target holds every case, and the CI and ledger say which was not
    assert (execution["status"], execution["error"]) == ("FAILED", "ResultsPartlyWritten")
    assert len(_only_run(runtime)["test_run_cases"]) == len(EXPECTED_TM_STATUSES)
    status = commit_statuses(runtime)[0]
    assert status["state"] == "error"
    assert status["description"] == (
        "results not written: elsewhere; 4 passed, 1 failed, 1 not run; patient-portal: ok; elsewhere: failed"
    )
    record = ledger(runtime).get_job(job.id)
    assert record is not None
    assert record["state"] == "partial"
    assert record["error"].startswith("results not written: elsewhere: VendorRejected: ")
