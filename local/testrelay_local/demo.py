"""`make run`: one real GitHub delivery through the whole relay, shown step by step."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from testrelay.relay import services
from testrelay.routing import load_routes
from testrelay_cli.progress import follow
from testrelay_local.functions import ROOT
from testrelay_local.runtime import DEFAULT_ROUTES, LocalRuntime, Vendors
from testrelay_local.signing import github_headers

DEFAULT_PAYLOAD = ROOT / "events" / "github" / "workflow_run.completed.payload.json"
Emit = Callable[[str], None]
TIME_SCALE = 0.01


def _wait_for_execution(runtime: LocalRuntime, job_id: str, timeout: float = 30.0) -> str:
    """The dispatcher starts the execution asynchronously (SQS); wait until it exists."""
    sfn = runtime.aws.client("stepfunctions")
    arn = runtime.execution_arn(job_id)
    deadline = time.monotonic() + timeout
    while True:
        try:
            sfn.describe_execution(executionArn=arn)
            return arn
        except sfn.exceptions.ExecutionDoesNotExist:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} was not dispatched within {timeout:.0f}s") from None
            time.sleep(0.1)


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    line = "  ".join(f"{{:<{width}}}" for width in widths)
    out = [line.format(*headers), line.format(*("-" * width for width in widths))]
    out += [line.format(*row) for row in rows]
    return "\n".join(out)


def show_write_back(job: dict[str, Any], outcomes: list[dict[str, Any]], emit: Emit) -> None:
    """The case results as they now stand in Test Management, read back through its API."""
    tm = services.testsigma_tm()
    statuses = {status["id"]: status["name"] for status in tm.list_run_statuses()}
    for target, outcome in zip(job["route"]["targets"], outcomes, strict=True):
        if not outcome.get("run_id"):
            emit(f"\n{target['name']}: nothing written ({outcome['status']})")
            continue
        cases = {case["id"]: case for case in tm.list_cases(target["project_id"])}
        rows = []
        for run_case in tm.list_run_cases(target["project_id"], outcome["run_id"]):
            case = cases.get(run_case["test_case_id"], {})
            rows.append(
                [
                    str(case.get("human_id", run_case["test_case_id"])),
                    str(case.get("title", ""))[:40],
                    statuses.get(run_case.get("test_run_status_id"), str(run_case.get("test_run_status_id"))),
                    str(run_case.get("description") or "")[:60],
                ]
            )
        emit(f"\nTest Management run {outcome['run_id']} ({target['name']}, project {target['project_id']}):")
        emit(table(sorted(rows), ["case", "title", "status", "from Testsigma"]))
        if outcome.get("unmatched"):
            emit(f"unmatched Testsigma cases ({outcome['unmatched']}): {', '.join(outcome['unmatched_cases'])}")


def show_commit_status(job: dict[str, Any], emit: Emit) -> bool:
    event = job["event"]
    statuses = services.github().list_commit_statuses(event["repository"], event["commit_sha"])
    ours = [s for s in statuses if s.get("context") == f"testrelay/{job['route']['name']}"]
    if not ours:
        emit("\nno commit status was posted")
        return False
    latest = ours[0]
    emit(f"\ncommit status on {event['repository']}@{event['commit_sha'][:7]} ({latest['context']}):")
    emit(f"  {latest['state']}: {latest['description']}\n  {latest.get('target_url', '')}")
    return True


def run_demo(
    routes: Path = DEFAULT_ROUTES, payload: Path = DEFAULT_PAYLOAD, vendors: Vendors | None = None, emit: Emit = print
) -> int:
    body = payload.read_bytes()
    started = time.monotonic()
    load_routes(routes)  # a clear error before anything starts
    with LocalRuntime(routes_file=routes, vendors=vendors, time_scale=TIME_SCALE) as runtime:
        emit(f"local relay up in {time.monotonic() - started:.1f}s; webhook {runtime.webhook_url()}")
        emit(f"state machine waits run {1 / TIME_SCALE:.0f}x faster than configured")
        if runtime.sandbox is not None:
            emit(f"vendor sandbox state: {runtime.sandbox.base_url}/_sandbox/state")
        delivery = str(uuid.uuid4())
        headers = github_headers(runtime.webhook_secret, body, "workflow_run", delivery)
        answer = requests.post(runtime.webhook_url(), data=body, headers=headers, timeout=10)
        emit(f"POST {payload.name} (delivery {delivery}) -> {answer.status_code} {answer.text}")
        if answer.status_code != 202:
            return 1
        failures = 0
        sfn = runtime.aws.client("stepfunctions")
        for job_id in answer.json()["jobs"]:
            emit(f"\njob {job_id}")
            execution = follow(sfn, _wait_for_execution(runtime, job_id), emit)
            if execution["status"] != "SUCCEEDED":
                emit(f"job {job_id} {execution['status']}: {execution.get('error')} {execution.get('cause')}")
                failures += 1
                continue
            job = json.loads(execution["input"])["job"]
            output = json.loads(execution["output"])
            show_write_back(job, output["writeback"], emit)
            if job["route"]["report_to_ci"] and not show_commit_status(job, emit):
                failures += 1
        emit(f"\ndone in {time.monotonic() - started:.1f}s")
        return 1 if failures else 0
