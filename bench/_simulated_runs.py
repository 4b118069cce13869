"""Jobs through the local runtime in simulated time, and what their execution histories say.

Shared by bench/polling.py and bench/cost.py: a fleet of trigger jobs of the demo route, arriving
spread over simulated time like real CI traffic, each followed to its end; per execution the looks
(PollStatus entries), the state transitions (every state entered, Map iterations' too, plus each
Task retry) and the detection lag (simulated seconds from the run's end, as the sandbox ran it, to
the start of the look that saw it).
"""

from __future__ import annotations

import statistics
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from testrelay.aws.queue import send_jobs  # noqa: E402
from testrelay.ci.github import GitHubProvider  # noqa: E402
from testrelay.models.ci_event import CiEvent  # noqa: E402
from testrelay.models.job import Job  # noqa: E402
from testrelay.models.routes import RouteAction  # noqa: E402
from testrelay.routing import load_routes  # noqa: E402
from testrelay_local.runtime import LocalRuntime  # noqa: E402

TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
POLLING_STATES = {"WaitForFirstLook", "PollStatus", "RunFinished?", "WaitForRun"}


def github_event() -> CiEvent:
    body = (ROOT / "events" / "github" / "workflow_run.completed.payload.json").read_bytes()
    headers = {"x-github-event": "workflow_run", "x-github-delivery": str(uuid.uuid4())}
    event = GitHubProvider().parse(headers, body)
    assert isinstance(event, CiEvent)
    return event


def demo_job(polling: dict[str, Any], targets: list[dict[str, Any]] | None = None) -> Job:
    """A trigger job of config/routes.yaml's demo route with its polling (and targets) replaced."""
    raw = load_routes(ROOT / "config" / "routes.yaml").routes[0].action().model_dump()
    raw["polling"] = {**raw["polling"], **polling}
    if targets is not None:
        raw["targets"] = targets
    return Job.for_event(github_event(), RouteAction.model_validate(raw))


@dataclass(frozen=True)
class Execution:
    mode: str
    status: str
    looks: int
    transitions: int
    polling_transitions: int
    duration: float
    """Simulated seconds the Testsigma run took."""
    lag: float
    """Simulated seconds from the run's end to the look that saw it (nan when none saw it)."""

    @property
    def lag_share(self) -> float:
        return self.lag / self.duration


def run_fleet(
    runtime: LocalRuntime,
    jobs: Sequence[tuple[str, Job]],
    spread_seconds: float,
    timeout: float = 900.0,
    on_progress: Callable[[str], None] = lambda _line: None,
) -> list[Execution]:
    """Sends (mode, job) pairs one by one over `spread_seconds` of simulated time, waits for every
    execution to end and measures each from its history."""
    assert runtime.clock is not None, "the fleet needs simulated time"
    queue = runtime.outputs["JobsQueueUrl"]
    gap = spread_seconds * runtime.clock.time_scale / max(1, len(jobs))
    for _, job in jobs:
        send_jobs(queue, [job])
        time.sleep(gap)
    sfn = runtime.aws.client("stepfunctions")
    pending = {job.id for _, job in jobs}
    deadline = time.monotonic() + timeout
    while pending:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} executions still running after {timeout:.0f}s")
        for job_id in sorted(pending):
            try:
                status = sfn.describe_execution(executionArn=runtime.execution_arn(job_id))["status"]
            except sfn.exceptions.ExecutionDoesNotExist:
                continue
            if status in TERMINAL:
                pending.discard(job_id)
        on_progress(f"{len(jobs) - len(pending)}/{len(jobs)} executions ended")
        time.sleep(0.5)
    assert runtime.sandbox is not None
    runs = runtime.sandbox.state()["testsigma"]["runs"].values()
    by_job = {job.id: run for run in runs for _, job in jobs if f"[testrelay {job.id}]" in (run["buildNo"] or "")}
    return [measure(runtime, mode, job, by_job[job.id]) for mode, job in jobs]


def history(runtime: LocalRuntime, arn: str) -> list[dict[str, Any]]:
    sfn = runtime.aws.client("stepfunctions")
    events: list[dict[str, Any]] = []
    token: dict[str, str] = {}
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **token)
        events += page["events"]
        if not page.get("nextToken"):
            return events
        token = {"nextToken": page["nextToken"]}


def transitions(events: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """Billed state transitions (every state entered, and every retry of a Task) and those of the
    polling loop among them."""
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if e["type"].endswith("StateEntered")]
    tasks = sum(1 for e in events if e["type"] == "TaskStateEntered")
    retries = max(0, sum(1 for e in events if e["type"] == "LambdaFunctionScheduled") - tasks)
    return len(entered) + retries, sum(1 for name in entered if name in POLLING_STATES)


def measure(runtime: LocalRuntime, mode: str, job: Job, run: dict[str, Any]) -> Execution:
    assert runtime.clock is not None
    arn = runtime.execution_arn(job.id)
    described = runtime.aws.client("stepfunctions").describe_execution(executionArn=arn)
    events = history(runtime, arn)
    looks = [e for e in events if e.get("stateEnteredEventDetails", {}).get("name") == "PollStatus"]
    total, polling = transitions(events)
    duration = float(run["duration_seconds"])
    ended = run["startTime"] / 1000 + duration
    lag = runtime.clock.at(looks[-1]["timestamp"]) - ended if looks else float("nan")
    return Execution(mode, described["status"], len(looks), total, polling, duration, lag)


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")
