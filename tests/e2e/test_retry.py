"""`testrelay retry` and the dispatcher's DLQ, through the local runtime: a failed job runs again from
its checkpoints (reusing the runs it created), a job that cannot be retried is refused, two retries at
once start one attempt, and a message that can never be processed rests in the DLQ with its reason."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from testrelay.aws.queue import send_jobs
from testrelay_cli.cli import main
from testrelay_cli.operations import Retry, retry_job
from testrelay_cli.stack_target import StackTarget, write_local_state
from testrelay_local.runtime import LocalRuntime
from tests.support import commit_statuses, demo_job, ledger, run_job, tm_run_cases, wait_for_execution

EVERY_CASE = {"TC-101", "TC-102", "TC-103", "TC-104", "TC-105", "TC-106"}


@pytest.fixture
def relay(runtime: LocalRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StackTarget:
    state = tmp_path / "local.json"
    write_local_state(runtime.aws.endpoint_url, runtime.outputs, runtime.webhook_url("github"), path=state)
    monkeypatch.setenv("TESTRELAY_LOCAL_STATE", str(state))
    return StackTarget(outputs=runtime.outputs, endpoint_url=runtime.aws.endpoint_url, region="us-east-1")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def _testsigma_runs(runtime: LocalRuntime) -> list[dict[str, Any]]:
    assert runtime.sandbox is not None
    return list(runtime.sandbox.state()["testsigma"]["runs"].values())


def _executions(runtime: LocalRuntime, job_id: str) -> list[str]:
    """The names of the job's executions (every attempt)."""
    sfn = runtime.aws.client("stepfunctions")
    listed = sfn.list_executions(stateMachineArn=runtime.outputs["StateMachineArn"])["executions"]
    return sorted(e["name"] for e in listed if e["name"].startswith(job_id))


def test_a_job_whose_trigger_failed_triggers_once_when_retried(
    runtime: LocalRuntime, relay: StackTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Testsigma answering 503 to the trigger, past every retry: the job fails without a run
    assert runtime.sandbox is not None
    runtime.sandbox.set_faults(
        rules=[{"vendor": "testsigma", "method": "POST", "path": "^/execution_results$", "kind": "server_error"}]
    )
    job = demo_job()
    failed = run_job(runtime, job)
    assert failed["status"] == "FAILED"
    assert _testsigma_runs(runtime) == []
    record = ledger(runtime).get_job(job.id)
    assert record is not None
    assert record["state"] == "failed"
    # When Testsigma is back and the operator retries the job
    runtime.sandbox.set_faults()
    code, out, _ = cli(capsys, "retry", job.id, "--wait", "--json")
    answer = json.loads(out)
    # Then attempt 2 runs under its own name, triggers one run, writes every case and succeeds
    assert code == 0, answer
    assert (answer["attempt"], answer["execution"], answer["started"]) == (2, f"{job.id}-a2", True)
    assert (answer["status"], answer["state"]) == ("SUCCEEDED", "reported")
    assert len(_testsigma_runs(runtime)) == 1
    [tm_run] = tm_run_cases(runtime).values()
    assert {c["human_id"]: c["update_count"] for c in tm_run["test_run_cases"]} == dict.fromkeys(EVERY_CASE, 1)
    assert commit_statuses(runtime)[0]["description"] == "4 passed, 1 failed, 1 not run"
    # And the record no longer carries the first attempt's error
    record = ledger(runtime).get_job(job.id)
    assert record is not None
    assert (record["state"], record["attempt"], record.get("error")) == ("reported", 2, None)
    # And redelivering the original webhook's job still starts nothing (same job id, first attempt's name)
    again = run_job(runtime, job)
    assert again["executionArn"].endswith(f":{job.id}")
    assert _executions(runtime, job.id) == sorted([job.id, f"{job.id}-a2"])
    assert len(_testsigma_runs(runtime)) == 1


def test_a_job_whose_target_failed_resumes_the_same_test_management_run(
    runtime: LocalRuntime, relay: StackTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Test Management refusing every case write (HTTP 500) after the run was created
    assert runtime.sandbox is not None
    runtime.sandbox.set_faults(
        rules=[{"vendor": "testsigma_tm", "method": "PUT", "path": "/test_cases$", "kind": "server_error"}]
    )
    job = demo_job()
    failed = run_job(runtime, job)
    # Then the execution says the results were not written, and so does the CI status
    assert (failed["status"], failed["error"]) == ("FAILED", "ResultsNotWritten")
    status = commit_statuses(runtime)[0]
    assert status["state"] == "error"
    assert status["description"].startswith("results not written: patient-portal; ")
    [first_run_id] = tm_run_cases(runtime)
    code, out, _ = cli(capsys, "job", job.id)
    assert code == 1
    assert f"retry     testrelay retry {job.id}" in out
    # When the vendor is back and the job is retried
    runtime.sandbox.set_faults()
    code, out, _ = cli(capsys, "retry", job.id, "--wait")
    # Then the same Test Management run receives every case once: no second run, no duplicate
    assert code == 0, out
    assert out.strip().splitlines()[-1] == f"job {job.id} attempt 2 succeeded"
    runs = tm_run_cases(runtime)
    assert list(runs) == [first_run_id]
    assert {c["human_id"]: c["update_count"] for c in runs[first_run_id]["test_run_cases"]} == dict.fromkeys(
        EVERY_CASE, 1
    )
    assert len(_testsigma_runs(runtime)) == 1  # the Testsigma run was reused too
    assert commit_statuses(runtime)[0]["description"] == "4 passed, 1 failed, 1 not run"


def test_a_job_that_succeeded_or_still_runs_is_refused(
    runtime: LocalRuntime, relay: StackTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a job that succeeded
    job = demo_job()
    assert run_job(runtime, job)["status"] == "SUCCEEDED"
    # Then a retry is refused with one line, exit 2, nothing queued
    code, _, err = cli(capsys, "retry", job.id)
    assert code == 2
    assert err.strip() == (
        f"testrelay: job {job.id} succeeded (attempt 1): every result is written, nothing to retry; "
        f"`testrelay job {job.id}` shows it"
    )
    code, out, _ = cli(capsys, "retry", job.id, "--json")
    assert code == 2
    assert "succeeded" in json.loads(out)["error"]
    # Given a job still running (its Testsigma run takes a while)
    running = demo_job()
    ledger(runtime).record_job(running)
    code, _, err = cli(capsys, "retry", running.id)
    assert code == 2
    assert f"job {running.id} is still running (attempt 1, state dispatched)" in err
    # And an unknown job is named
    code, _, err = cli(capsys, "retry", "no-such-job")
    assert (code, err.strip().startswith("testrelay: no job 'no-such-job'")) == (2, True)
    assert _executions(runtime, job.id) == [job.id]
    assert _executions(runtime, running.id) == []


def test_two_retries_at_once_start_one_attempt(runtime: LocalRuntime, relay: StackTarget) -> None:
    # Given a job that failed (its plan does not exist)
    job = demo_job(testsigma={"test_plan_id": 999999})
    assert run_job(runtime, job)["status"] == "FAILED"
    # When two operators retry it at the same moment
    answers: list[Retry] = []
    barrier = threading.Barrier(2)

    def retry() -> None:
        barrier.wait()
        answers.append(retry_job(relay, job.id))

    threads = [threading.Thread(target=retry) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then both name attempt 2, one of them started it, and one execution of it ran
    assert sorted((a.attempt, a.started) for a in answers) == [(2, False), (2, True)]
    wait_for_execution(runtime, f"{job.id}-a2")
    assert _executions(runtime, job.id) == sorted([job.id, f"{job.id}-a2"])
    record = ledger(runtime).get_job(job.id)
    assert record is not None
    assert record["attempt"] == 2


def test_a_poison_message_rests_in_the_dlq_with_its_reason_and_redrive_shows_it(
    runtime: LocalRuntime, relay: StackTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a message no dispatcher can process (an unknown schema) and a retry of a job that does not exist
    sqs = runtime.aws.client("sqs")
    poison = json.dumps({"id": "x", "schema_version": 9})
    sqs.send_message(QueueUrl=runtime.outputs["JobsQueueUrl"], MessageBody=poison)
    sqs.send_message(
        QueueUrl=runtime.outputs["JobsQueueUrl"], MessageBody=json.dumps({"retry_of": "gone-job", "attempt": 2})
    )
    # And a good job behind them
    job = demo_job()
    send_jobs(runtime.outputs["JobsQueueUrl"], [job])
    assert wait_for_execution(runtime, job.id)["status"] == "SUCCEEDED"
    # Then both rest in the DLQ after one receive each (parked, not looped), and redrive names each reason
    code, out, _ = cli(capsys, "redrive", "--dry-run", "--json")
    assert code == 0
    listed = {m["job_id"]: m for m in json.loads(out)}
    assert set(listed) == {"x", "gone-job"}
    assert listed["x"]["reason"].startswith("not a job or retry request: ")
    assert "schema_version" in listed["x"]["reason"]
    assert listed["gone-job"]["reason"] == "retry of job gone-job: no such job in the ledger"
    assert listed["gone-job"]["route"] == "retry, attempt 2"
    code, out, _ = cli(capsys, "redrive", "--dry-run")
    assert "would move x (route ?, received " in out
    assert "): not a job or retry request: " in out


def test_a_job_whose_execution_ended_without_recording_it_can_be_retried(
    runtime: LocalRuntime, relay: StackTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a job the ledger shows running, whose execution ended without any step recording it
    job = demo_job()
    ledger(runtime).record_job(job)
    ledger(runtime).update_job(job.id, state="running")
    sfn = runtime.aws.client("stepfunctions")
    sfn.start_execution(stateMachineArn=runtime.outputs["StateMachineArn"], name=job.id, input='{"job": {}}')
    assert wait_for_execution(runtime, job.id)["status"] == "FAILED"
    # When it is retried
    code, out, _ = cli(capsys, "retry", job.id, "--wait", "--json")
    # Then the retry is allowed, and attempt 2 runs the job the ledger kept
    assert code == 0, out
    assert (json.loads(out)["attempt"], json.loads(out)["state"]) == (2, "reported")
