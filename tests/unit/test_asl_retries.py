"""The state machine's own promises, read from relay.asl.json: every Task retries every transient
failure AWS can report, throttling is retried past BrowserStack's documented 60 s pause, and the
execution's end state says whether the results were written."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import ROOT

ASL = json.loads((ROOT / "statemachine" / "relay.asl.json").read_text())

# What Step Functions reports for a Lambda that failed for a passing reason: the service's own errors
# (docs: "Handle Lambda service exceptions"), a function killed by its time-out or out of memory
# (reported as Lambda.Unknown; the runtime's own names Runtime.ExitError and Sandbox.Timedout), and a
# Task time-out (States.Timeout). VendorUnavailable is the relay's own "try again later".
TRANSIENT = {
    "VendorUnavailable",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.Unknown",
    "Runtime.ExitError",
    "Sandbox.Timedout",
    "States.Timeout",
}
BROWSERSTACK_PAUSE_SECONDS = 60


def _tasks(states: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in states.items():
        if state["Type"] == "Task":
            yield prefix + name, state
        for branch in [state.get("ItemProcessor") or state.get("Iterator"), *list(state.get("Branches") or [])]:
            if branch:
                yield from _tasks(branch["States"], f"{prefix}{name}/")


TASKS = dict(_tasks(ASL["States"]))


def test_the_asl_has_the_tasks_we_think() -> None:
    assert set(TASKS) == {
        "TriggerPlan",
        "PollStatus",
        "GatherShards",
        "CollectResults",
        "WriteBack/WriteTarget",
        "WriteBack/TargetFailed",
        "ReportToCi",
        "RecordTimeout",
        "RecordFailure",
    }


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_retries_every_transient_failure_with_backoff_and_jitter(name: str) -> None:
    retriers = TASKS[name]["Retry"]
    covered = {error: retrier for retrier in retriers for error in retrier["ErrorEquals"]}
    assert set(covered) >= TRANSIENT, f"{name} does not retry {sorted(TRANSIENT - set(covered))}"
    for error in TRANSIENT | {"VendorThrottled"}:
        retrier = covered[error]
        assert retrier["MaxAttempts"] >= 3, (name, error)
        assert retrier["BackoffRate"] > 1, (name, error)
        assert retrier["JitterStrategy"] == "FULL", (name, error)
        assert retrier.get("MaxDelaySeconds"), (name, error)
    # A retrier listed first wins: nothing may swallow a transient error before its retrier.
    for retrier in retriers:
        assert "States.ALL" not in retrier["ErrorEquals"], name


def _vendor_throttled(name: str) -> dict[str, Any]:
    [retrier] = [r for r in TASKS[name]["Retry"] if "VendorThrottled" in r["ErrorEquals"]]
    return retrier


@pytest.mark.parametrize("name", sorted(TASKS))
def test_throttling_is_retried_past_the_documented_pause_almost_surely(name: str) -> None:
    # Full jitter waits a uniform time in [0, min(cap, interval * rate^n)] before retry n+1. The
    # retries cover the pause when their waits add up to more than 60 s.
    retrier = _vendor_throttled(name)
    caps = [
        min(retrier["MaxDelaySeconds"], retrier["IntervalSeconds"] * retrier["BackoffRate"] ** n)
        for n in range(retrier["MaxAttempts"])
    ]
    rng = random.Random(10)
    trials = 100_000
    short = sum(sum(rng.uniform(0, cap) for cap in caps) < BROWSERSTACK_PAUSE_SECONDS for _ in range(trials))
    assert short / trials < 0.001, f"{name}: {short / trials:.2%} of throttled tasks give up within 60 s"


def test_the_end_states_say_whether_results_were_written() -> None:
    states = ASL["States"]
    assert states["ReportToCi"]["Next"] == "AllWritten?"
    choices = {c["StringEquals"]: c["Next"] for c in states["AllWritten?"]["Choices"]}
    assert choices == {"partial": "Partial", "failed": "ResultsNotWritten"}
    assert states["AllWritten?"]["Default"] == "Done"
    ends = {name: state.get("Error") for name, state in states.items() if state["Type"] == "Fail"}
    assert ends == {
        "Partial": "ResultsPartlyWritten",
        "ResultsNotWritten": "ResultsNotWritten",
        "TimedOut": "DeadlineExceeded",
        "Failed": "RelayFailed",
    }
