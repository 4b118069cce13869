"""A Testsigma run that outlives the route's deadline: the job reports a timeout and fails."""

from __future__ import annotations

from testrelay_local.runtime import LocalRuntime
from tests.support import commit_statuses, demo_job, history, ledger, run_job, tm_run_cases

SANDBOX_RUN_DURATION = 60.0  # far longer than the deadline below


def test_a_run_past_its_deadline_is_reported_as_a_timeout(runtime: LocalRuntime) -> None:
    # Given a route that gives a run one second
    job = demo_job(polling={"first_wait_seconds": 0, "max_wait_seconds": 0, "deadline_seconds": 1})
    # When the job runs against a run that takes a minute
    execution = run_job(runtime, job)
    # Then it fails as DeadlineExceeded after polling, without writing anything
    assert execution["status"] == "FAILED"
    assert execution["error"] == "DeadlineExceeded"
    names = [
        e["stateEnteredEventDetails"]["name"]
        for e in history(runtime, execution["executionArn"])
        if "stateEnteredEventDetails" in e
    ]
    assert names.count("PollStatus") >= 2
    assert names[-3:] == ["DeadlineExceeded", "RecordTimeout", "TimedOut"]
    assert tm_run_cases(runtime) == {}
    # And the CI and the ledger say the run did not finish in time
    status = commit_statuses(runtime)[0]
    assert status["state"] == "error"
    assert "did not finish before the route deadline" in status["description"]
    record = ledger(runtime).get_job(job.id)
    assert record is not None
    assert record["state"] == "timed_out"  # retryable: `testrelay retry` polls the same run again
