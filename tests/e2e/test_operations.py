"""Schedules, result-sync of an existing run, and the DLQ, through the local runtime and the same
operations the `testrelay` CLI runs."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from testrelay.settings import get_settings
from testrelay_cli.operations import enqueue, fire_schedule, list_jobs, redrive, resync_job, show_job
from testrelay_cli.stack_target import StackTarget
from testrelay_local.runtime import DEFAULT_ROUTES, LocalRuntime
from tests.support import demo_job, start_testsigma_run, tm_run_cases, wait_for_execution


@pytest.fixture
def stack(runtime: LocalRuntime) -> StackTarget:
    return StackTarget(outputs=runtime.outputs, endpoint_url=runtime.aws.endpoint_url, region="us-east-1")


def _testsigma_runs(runtime: LocalRuntime) -> dict[str, object]:
    assert runtime.sandbox is not None
    runs: dict[str, object] = runtime.sandbox.state()["testsigma"]["runs"]
    return runs


def test_a_schedule_fired_twice_for_the_same_time_runs_once(runtime: LocalRuntime, stack: StackTarget) -> None:
    # Given the nightly schedule of the routes file
    # When it fires, and EventBridge delivers the same firing again
    first = fire_schedule(stack, "nightly-checkout", "2026-11-24T01:00:00Z")
    second = fire_schedule(stack, "nightly-checkout", "2026-11-24T01:00:00Z")
    # Then both name the same job, which runs once and triggers exactly one Testsigma run
    assert first["job_id"] == second["job_id"]
    assert first["scheduled_time"] == "2026-11-24T01:00Z"
    assert wait_for_execution(runtime, first["job_id"])["status"] == "SUCCEEDED"
    time.sleep(1.0)
    assert len(_testsigma_runs(runtime)) == 1
    [tm_run] = tm_run_cases(runtime).values()
    assert len(tm_run["test_run_cases"]) == 6
    # And the job's record says where it came from and how it ended
    job = show_job(stack, first["job_id"])
    assert job is not None
    assert (job["provider"], job["state"], job["summary"]) == ("schedule", "reported", "4 passed, 1 failed, 1 not run")
    # A firing for another time is another run
    later = fire_schedule(stack, "nightly-checkout", "2026-11-25T01:00:00Z")
    assert later["job_id"] != first["job_id"]
    assert wait_for_execution(runtime, later["job_id"])["status"] == "SUCCEEDED"


def test_an_existing_testsigma_run_is_synced_without_a_new_trigger(runtime: LocalRuntime, stack: StackTarget) -> None:
    # Given a run someone started in Testsigma directly
    started = start_testsigma_run(runtime)
    # When an operator re-syncs it into the route's targets
    job = resync_job(str(DEFAULT_ROUTES), "octo-checkout", int(started["id"]))
    enqueue(stack, job)
    # Then its results land in Test Management, and Testsigma ran nothing new
    execution = wait_for_execution(runtime, job.id)
    assert execution["status"] == "SUCCEEDED"
    assert list(_testsigma_runs(runtime)) == [str(started["id"])]
    [tm_run] = tm_run_cases(runtime).values()
    assert {c["human_id"]: c["status_name"] for c in tm_run["test_run_cases"]}["TC-103"] == "Failed"
    # And re-syncing the same run again changes nothing unless asked to
    enqueue(stack, resync_job(str(DEFAULT_ROUTES), "octo-checkout", int(started["id"])))
    time.sleep(1.5)
    assert len(tm_run_cases(runtime)) == 1
    assert [j["job_id"] for j in list_jobs(stack)].count(job.id) == 1


@pytest.fixture
def broken_dispatch(runtime: LocalRuntime) -> Iterator[None]:
    """Dispatch pointed at a state machine that does not exist, with a 1 s visibility timeout so the
    five receives before the DLQ take seconds."""
    sqs = runtime.aws.client("sqs")
    queue = runtime.outputs["JobsQueueUrl"]
    original = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout"])["Attributes"]
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "1"})
    time.sleep(1.5)  # a long poll already waiting keeps the timeout it started with
    arn = os.environ["STATE_MACHINE_ARN"]
    os.environ["STATE_MACHINE_ARN"] = arn + "-missing"
    get_settings.cache_clear()
    yield
    os.environ["STATE_MACHINE_ARN"] = arn
    get_settings.cache_clear()
    sqs.set_queue_attributes(QueueUrl=queue, Attributes=original)


def test_a_poisoned_job_rests_in_the_dlq_until_redriven(
    runtime: LocalRuntime, stack: StackTarget, broken_dispatch: None
) -> None:
    # Given a job the dispatcher cannot start
    job = demo_job()
    enqueue(stack, job)
    sqs = runtime.aws.client("sqs")
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        waiting = sqs.get_queue_attributes(QueueUrl=runtime.outputs["JobsDlqUrl"], AttributeNames=["All"])
        if waiting["Attributes"]["ApproximateNumberOfMessages"] == "1":
            break
        time.sleep(0.5)
    # Then after its receives it rests in the DLQ, and a dry run shows what would move
    preview = redrive(stack, dry_run=True)
    assert [(m.job_id, m.route) for m in preview] == [(job.id, "octo-checkout")]
    # When the cause is fixed and the DLQ is redriven
    os.environ["STATE_MACHINE_ARN"] = os.environ["STATE_MACHINE_ARN"].removesuffix("-missing")
    get_settings.cache_clear()
    moved = redrive(stack)
    # Then the job runs to the end
    assert [m.job_id for m in moved] == [job.id]
    assert wait_for_execution(runtime, job.id)["status"] == "SUCCEEDED"
