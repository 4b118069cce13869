"""When to look at a Testsigma run next: by the plan's recent run durations, or by backoff.

Predictive: the first look is at the *window start*, the time by which one in ten of the plan's
recent runs had finished (never earlier than half their median, so one aborted run does not pull it
in); every later look is `max_lag_share` of the elapsed time after the previous one. A run that is
still going at elapsed time t lasts longer than t, so the next look, at t * (1 + share), sees its end
at most `share` of its duration late; a run that ends before the window start is seen at the window
start. Without history (a plan's first runs) the route's backoff applies.

Looks never fall past the route's deadline: the look after it is the one that reports the timeout.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime

from testrelay.models.execution import ExecutionStatus, RunRef
from testrelay.models.job import Job
from testrelay.models.routes import Polling

HISTORY_SIZE = 20
"""Durations kept per plan: recent enough to follow a plan that grows, enough for a tenth percentile."""
WINDOW_QUANTILE = 0.1
WINDOW_FLOOR_SHARE = 0.5
"""The window start is at least this share of the median duration (short outliers, aborted runs)."""
MIN_LOOK_INTERVAL_SECONDS = 10.0
"""No two looks closer than this (unless the route's max_wait_seconds is lower): short runs do not busy-poll."""
_MAX_PLAUSIBLE_SECONDS = 30 * 24 * 3600.0


def window_start(durations: Sequence[float]) -> float | None:
    """Seconds after a run's start of its first predicted look; None without usable history."""
    usable = sorted(d for d in durations if 0 < d < _MAX_PLAUSIBLE_SECONDS)
    if not usable:
        return None
    position = WINDOW_QUANTILE * (len(usable) - 1)
    low = int(position)
    high = min(low + 1, len(usable) - 1)
    quantile = usable[low] + (usable[high] - usable[low]) * (position - low)
    return max(quantile, WINDOW_FLOOR_SHARE * statistics.median(usable))


def plan_key(job: Job) -> str:
    """Runs of one plan in one environment are alike; another environment (browser, lab) may not be."""
    plan = job.route.testsigma
    return f"{plan.test_plan_id}#env{plan.environment_id or 0}"


def anchor(run: RunRef, status: ExecutionStatus | None, now: float) -> float:
    """When the run started: the relay's trigger time, or the vendor's start when it is earlier (a
    run a result-sync job adopted started before the relay saw it)."""
    started = status.started_at if status is not None else None
    if started is not None and now - _MAX_PLAUSIBLE_SECONDS < started < run.triggered_at:
        return started
    return run.triggered_at


def next_look(
    polling: Polling, *, now: float, start: float, deadline_at: float, looks: int, window: float | None
) -> float:
    """Epoch seconds of the next look. `looks`: looks so far (the answer of the relay's trigger counts as one);
    `window`: the window start (seconds after `start`), None for backoff."""
    if looks == 0:
        # An adopted run nobody has looked at may have finished already.
        return now
    if polling.mode == "backoff" or window is None:
        planned = now + polling.wait_after(max(0, looks - 1))
    else:
        elapsed = max(0.0, now - start)
        floor = max(1.0, min(MIN_LOOK_INTERVAL_SECONDS, float(polling.max_wait_seconds)))
        if elapsed + floor <= window:
            planned = start + window
        else:
            step = min(float(polling.max_wait_seconds), polling.max_lag_share * elapsed)
            planned = now + max(floor, step)
    return max(now, min(planned, deadline_at))


def deadline_at(polling: Polling, run: RunRef) -> float:
    """The first moment the deadline has passed (a look then reports the timeout)."""
    return run.triggered_at + polling.deadline_seconds + 1


def timestamp(epoch: float) -> str:
    """A Wait state's timestamp: UTC, whole seconds, rounded up so a look is never early."""
    return datetime.fromtimestamp(math.ceil(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def finished_duration(job: Job, run: RunRef, status: ExecutionStatus, now: float) -> float | None:
    """How long a finished run took: the vendor's figure, else (for a run the relay triggered) the
    time from the trigger to this look, an upper bound by at most the last wait."""
    if status.duration_seconds is not None:
        return status.duration_seconds
    if job.kind == "trigger":
        return now - run.triggered_at
    return None
