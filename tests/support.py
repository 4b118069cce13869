"""Helpers shared by tests of every layer."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import requests

from testrelay.aws.ledger import Ledger
from testrelay.aws.queue import send_jobs
from testrelay.models.job import Job
from testrelay_local.runtime import LocalRuntime
from testrelay_local.samples import EVENTS, FakeLambdaContext, demo_job, github_event, github_fixture
from testrelay_local.sandbox import DEMO_PLAN_ID, DEMO_TESTSIGMA_API_KEY

ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"
# Re-exported: tests import the samples from here.
__all__ = ["EVENTS", "FakeLambdaContext", "demo_job", "github_event", "github_fixture"]


TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}


def wait_for_execution(runtime: LocalRuntime, job_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """The finished execution of a job (started by the dispatcher from the queue)."""
    sfn = runtime.aws.client("stepfunctions")
    arn = runtime.execution_arn(job_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            described: dict[str, Any] = sfn.describe_execution(executionArn=arn)
        except sfn.exceptions.ExecutionDoesNotExist:
            described = {"status": "NOT_STARTED"}
        if described["status"] in TERMINAL:
            return described
        time.sleep(0.05)
    raise TimeoutError(f"execution of job {job_id} did not finish within {timeout}s")


def run_job(runtime: LocalRuntime, job: Job) -> dict[str, Any]:
    """Queue a job as the webhook would and return its finished execution."""
    send_jobs(runtime.outputs["JobsQueueUrl"], [job])
    return wait_for_execution(runtime, job.id)


def history(runtime: LocalRuntime, execution_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = runtime.aws.client("stepfunctions").get_execution_history(
        executionArn=execution_arn, maxResults=1000
    )["events"]
    return events


def ledger(runtime: LocalRuntime) -> Ledger:
    return Ledger(runtime.outputs["LedgerTableName"])


def tm_run_cases(runtime: LocalRuntime) -> dict[str, dict[str, Any]]:
    """Every Test Management run the sandbox holds, by run id."""
    assert runtime.sandbox is not None
    projects = runtime.sandbox.state()["testsigma_tm"]["projects"]
    return {run_id: run for project in projects.values() for run_id, run in project.get("test_runs", {}).items()}


def commit_statuses(runtime: LocalRuntime, repository: str = "octo-org/octo-repo") -> list[dict[str, Any]]:
    """Newest first."""
    assert runtime.sandbox is not None
    by_sha = runtime.sandbox.state()["github"]["statuses"].get(repository, {})
    return [status for statuses in by_sha.values() for status in statuses]


def start_testsigma_run(runtime: LocalRuntime) -> dict[str, Any]:
    """A run of the demo plan started in Testsigma directly (by a person or a CI step), not by the relay."""
    assert runtime.sandbox is not None
    answer: dict[str, Any] = requests.post(
        f"{runtime.sandbox.testsigma_url}/execution_results",
        json={"executionId": DEMO_PLAN_ID},
        headers={"Authorization": f"Bearer {DEMO_TESTSIGMA_API_KEY}"},
        timeout=10,
    ).json()
    return answer
