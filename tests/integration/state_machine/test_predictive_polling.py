"""Predictive polling through the real relay.asl.json, in simulated time: 30-minute Testsigma runs play
out in seconds, and the Wait timestamps, the deadline and the sandbox's runs all keep proportion."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from testrelay.aws.queue import send_jobs
from testrelay.models.job import Job
from testrelay.relay.polling import HISTORY_SIZE, plan_key
from testrelay_local.runtime import LocalRuntime
from testrelay_local.sandbox import DEMO_PLAN_ID
from tests.support import demo_job, history, ledger, tm_run_cases, wait_for_execution

TIME_SCALE = 1 / 600  # a 30-minute run takes 3 s
HALF_HOUR = 1800.0


@pytest.fixture(scope="module")
def simulated() -> Iterator[LocalRuntime]:
    with LocalRuntime(time_scale=TIME_SCALE, simulated_time=True, sandbox_run_duration=HALF_HOUR) as runtime:
        yield runtime


@pytest.fixture
def runtime(simulated: LocalRuntime) -> LocalRuntime:
    assert simulated.sandbox is not None
    simulated.sandbox.reset()
    return simulated


def _given_history(runtime: LocalRuntime, job: Job, seconds: float | list[float]) -> None:
    """The plan's last runs took `seconds` each (or these durations): a full history, so earlier tests'
    runs are gone."""
    durations = seconds if isinstance(seconds, list) else [seconds] * HISTORY_SIZE
    for n, duration in enumerate(durations):
        ledger(runtime).record_run_duration(plan_key(job), 900_000 + n, duration, keep=HISTORY_SIZE)


def _runs_take(runtime: LocalRuntime, seconds: float) -> None:
    assert runtime.sandbox is not None
    runtime.sandbox.set_run_durations({DEMO_PLAN_ID: {"median_seconds": seconds}})


def _run_all(runtime: LocalRuntime, *jobs: Job) -> list[dict[str, Any]]:
    send_jobs(runtime.outputs["JobsQueueUrl"], list(jobs))
    return [wait_for_execution(runtime, job.id, timeout=120) for job in jobs]


def _looks(runtime: LocalRuntime, execution: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for e in history(runtime, execution["executionArn"])
        if e.get("stateEnteredEventDetails", {}).get("name") == "PollStatus"
    ]


def _lag(runtime: LocalRuntime, execution: dict[str, Any]) -> float:
    """Simulated seconds from the run's end to the look that saw it."""
    assert runtime.sandbox is not None
    assert runtime.clock is not None
    [run] = [r for r in runtime.sandbox.state()["testsigma"]["runs"].values() if execution["name"] in r["buildNo"]]
    ended = run["startTime"] / 1000 + run["duration_seconds"]
    return runtime.clock.at(_looks(runtime, execution)[-1]["timestamp"]) - ended


def test_predictive_polling_looks_fewer_times_than_backoff_at_a_run_as_long_as_its_history(
    runtime: LocalRuntime,
) -> None:
    # Given a plan whose runs take 30 minutes, as its history says
    backoff = demo_job(polling={"mode": "backoff"})
    predictive = demo_job(polling={"mode": "predictive"})
    _given_history(runtime, predictive, HALF_HOUR)
    _runs_take(runtime, HALF_HOUR)
    # When a job of each mode runs at the same time
    done = _run_all(runtime, backoff, predictive)
    # Then both succeed and write their results
    assert [e["status"] for e in done] == ["SUCCEEDED", "SUCCEEDED"]
    assert len(tm_run_cases(runtime)) == 2
    # And predictive looked at most twice (the trigger's answer was the first look), backoff many times
    backoff_looks, predictive_looks = (len(_looks(runtime, e)) for e in done)
    assert predictive_looks <= 2
    assert backoff_looks >= 6
    # And predictive saw the end within a tenth of the run (the bound is simulated time; the slack
    # covers handler time on a loaded machine, which simulated time magnifies 600x)
    assert _lag(runtime, done[1]) <= 0.1 * HALF_HOUR + 120
    # And each finished run added its duration to the plan's history, the history stays bounded
    durations = ledger(runtime).run_durations(plan_key(predictive))
    assert len(durations) == HISTORY_SIZE
    assert durations[-2:] == pytest.approx([HALF_HOUR, HALF_HOUR], abs=1)


def test_a_run_shorter_than_any_in_its_history_is_seen_within_a_tenth_of_its_duration(runtime: LocalRuntime) -> None:
    # Given a plan whose last 20 runs took 25 to 35 minutes, and a run that takes 23.6 minutes
    job = demo_job(polling={"mode": "predictive"})
    _given_history(runtime, job, [1500.0 + 600.0 * n / (HISTORY_SIZE - 1) for n in range(HISTORY_SIZE)])
    _runs_take(runtime, 1415)
    # When the job runs
    [execution] = _run_all(runtime, job)
    # Then the first look, low enough for the plan's spread, sees its end within a tenth of its
    # duration (a first look at the tenth percentile, 26 minutes, would be 10.2 % late)
    assert execution["status"] == "SUCCEEDED"
    assert len(_looks(runtime, execution)) == 1
    assert _lag(runtime, execution) <= 0.1 * 1415


def test_a_run_far_shorter_than_its_history_is_still_caught(runtime: LocalRuntime) -> None:
    # Given a plan whose history says 30 minutes, and a run that ends (aborted, say) after 5
    job = demo_job(polling={"mode": "predictive"})
    _given_history(runtime, job, HALF_HOUR)
    _runs_take(runtime, 300)
    # When the job runs
    [execution] = _run_all(runtime, job)
    # Then it is caught at the first look (an outlier: looking for it earlier would cost every run
    # more looks) and its results are written
    assert execution["status"] == "SUCCEEDED"
    assert len(_looks(runtime, execution)) == 1
    assert len(tm_run_cases(runtime)) == 1
    # And its short duration joins the history
    assert ledger(runtime).run_durations(plan_key(job))[-1] == pytest.approx(300, abs=1)


def test_a_run_far_longer_than_its_history_meets_the_deadline_without_busy_polling(runtime: LocalRuntime) -> None:
    # Given a plan whose history says 30 minutes, a run that takes 3 hours and a one-hour deadline
    job = demo_job(polling={"mode": "predictive", "deadline_seconds": 3600})
    _given_history(runtime, job, HALF_HOUR)
    _runs_take(runtime, 3 * 3600)
    # When the job runs
    [execution] = _run_all(runtime, job)
    # Then it times out at the deadline, after looks spaced by a tenth of the elapsed time (at most
    # max_wait_seconds): about ten between the first look and the deadline, not a busy loop
    assert execution["status"] == "FAILED"
    assert execution["error"] == "DeadlineExceeded"
    looks = _looks(runtime, execution)
    assert 3 <= len(looks) <= 15
    assert runtime.clock is not None
    record = ledger(runtime).get_job(job.id)
    assert record is not None
    assert record["state"] == "timed_out"
    # And the look that reported it came at the deadline: a state's entry precedes the handler's clock
    # reading by the handler's time, which simulated time magnifies 600x (60 s here is 0.1 s real)
    last_look = runtime.clock.at(looks[-1]["timestamp"])
    triggered = record["testsigma_run"]["triggered_at"]
    assert triggered + 3600 - 60 < last_look < triggered + 3900
    assert runtime.clock.at(looks[-2]["timestamp"]) < triggered + 3600
