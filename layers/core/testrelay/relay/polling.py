"""When to look at a Testsigma run next: by the plan's recent run durations, or by backoff.

Predictive: the looks form a geometric ladder, each `max_lag_share` of the elapsed time after the
previous one. A run still going at elapsed time t lasts longer than t, so the next look, at
t * (1 + share), sees its end at most `share` of its duration late. The ladder's first rung is
`1 + share` times the shortest duration the plan's history makes plausible: the shortest recent run,
or the lognormal fit's first percentile when that is shorter (twenty runs rarely show a plan's
shortest), so a run at least that long is seen at most `share` late. A run shorter than three spreads
below the median (aborted, say) is an outlier: it does not pull the ladder in, and a run like it is
seen at the first rung. The first rung is never so early that a run of the median duration would
need more than the looks budget. Without history (a plan's first runs) the route's backoff applies.

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
"""Durations kept per plan: recent enough to follow a plan that grows, enough for a robust spread."""
LOW_END_SPREADS = 2.33
"""The ladder starts at the fit's first percentile (median * e^(-2.33 sigma)) when the history is shorter."""
OUTLIER_SPREADS = 3.0
"""A run this many spreads below the median is an outlier (0.13 % of a lognormal plan's runs)."""
MIN_OUTLIER_SPREAD = 0.1
"""The spread the outlier test assumes at least: a plan whose recent runs took the same time still varies."""
LOOKS_BUDGET = 8.0
"""Expected looks of a run of the plan (the trigger's answer not counted), spread permitting: the first
rung is never lower than median / (1 + share)^(LOOKS_BUDGET - 1.5) (one look at the first rung, the rungs
to the median, half a rung on average past it)."""
MIN_LOOK_INTERVAL_SECONDS = 10.0
"""No two looks closer than this (unless the route's max_wait_seconds is lower): short runs do not busy-poll."""
_MAX_PLAUSIBLE_SECONDS = 30 * 24 * 3600.0
_MAD_TO_SIGMA = 1.4826
"""A normal distribution's standard deviation per median absolute deviation."""


def first_look(durations: Sequence[float], max_lag_share: float) -> float | None:
    """Seconds after a run's start of its first predicted look; None without usable history."""
    usable = sorted(d for d in durations if 0 < d < _MAX_PLAUSIBLE_SECONDS)
    if not usable:
        return None
    median = statistics.median(usable)
    # The log-durations' spread, robust to the outliers it is used to find.
    spread = _MAD_TO_SIGMA * statistics.median(abs(math.log(d / median)) for d in usable)
    cut = median * math.exp(-OUTLIER_SPREADS * max(spread, MIN_OUTLIER_SPREAD))
    shortest = min((d for d in usable if d >= cut), default=median)
    low_end = min(shortest, median * math.exp(-LOW_END_SPREADS * spread))
    ratio = 1 + max_lag_share
    return max(ratio * low_end, median / math.pow(ratio, LOOKS_BUDGET - 1.5))


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
    `window`: the ladder's first rung (seconds after `start`, from `first_look`), None for backoff."""
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
