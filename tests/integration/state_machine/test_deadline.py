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


def test_a_retried_job_follows_its_run_against_a_fresh_deadline(runtime: LocalRuntime) -> None:
    from testrelay.models.execution import RunRef
    from testrelay.relay.run import poll_status, trigger_plan

    # Given a job that timed out following its run (a one-second deadline, a run of a minute)
    job = demo_job(polling={"first_wait_seconds": 0, "max_wait_seconds": 0, "deadline_seconds": 1})
    assert run_job(runtime, job)["error"] == "DeadlineExceeded"
    record = ledger(runtime).get_job(job.id)
    assert record is not None
    first = RunRef.model_validate(record["testsigma_run"])
    # When it is retried (attempt 2) and its TriggerPlan step runs, twice (as a Retry would)
    assert ledger(runtime).claim_attempt(job.id, 2) == "claimed"
    followed = trigger_plan(job)
    again = trigger_plan(job)
    # Then it follows the same run, its deadline counted from this attempt, the same on a repeat
    assert (followed.run_id, again) == (first.run_id, followed)
    assert followed.triggered_at >= first.triggered_at + 1
    assert not poll_status(job, followed, None)["deadline_passed"]
