"""When the relay looks at a Testsigma run: predicted from the plan's recent durations, or by backoff."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from testrelay.aws.ledger import Ledger
from testrelay.models.execution import ExecutionStatus, RunRef
from testrelay.models.routes import Polling
from testrelay.relay.polling import (
    HISTORY_SIZE,
    LOOKS_BUDGET,
    MIN_LOOK_INTERVAL_SECONDS,
    anchor,
    deadline_at,
    first_look,
    next_look,
    timestamp,
)
from testrelay.vendors import testsigma
from testrelay_local.atomic_dynamodb import atomic_items

T0 = 1_750_000_000.0
PREDICTIVE = Polling()
BACKOFF = Polling(mode="backoff")


def _run(triggered_at: float = T0) -> RunRef:
    return RunRef(run_id=1001, url="", triggered_at=triggered_at, plan_id=2741)


def _next(polling: Polling, now: float, looks: int, window: float | None, start: float = T0) -> float:
    return next_look(
        polling, now=now, start=start, deadline_at=deadline_at(polling, _run()), looks=looks, window=window
    )


def _looks_until_seen(polling: Polling, window: float, duration: float) -> tuple[int, float]:
    """Looks (the trigger's answer not counted) until one at or after the run's end, and that look's
    time after the start; each at its Wait timestamp (whole seconds, rounded up)."""
    now, looks = T0, 1
    while True:
        now = math.ceil(_next(polling, now=now, looks=looks, window=window))
        looks += 1
        if now - T0 >= duration or now >= deadline_at(polling, _run()):
            return looks - 1, now - T0


def test_a_history_of_half_hour_runs_puts_the_first_look_where_its_shortest_run_is_seen_in_time() -> None:
    # Given a plan whose last runs took about 30 minutes, the shortest 29:50
    window = first_look([1790.0, 1800.0, 1810.0, 1805.0, 1795.0], PREDICTIVE.max_lag_share)
    assert window is not None
    # When the relay has just triggered a run (the trigger's answer is the first look)
    first = _next(PREDICTIVE, now=T0, looks=1, window=window)
    # Then it first looks when a run as short as the shortest (or the fit's first percentile, a few
    # seconds shorter) would be a tenth late: just before 33 minutes, one look for a typical run
    assert 1.1 * 1780 < window <= 1.1 * 1790
    assert first == pytest.approx(T0 + window)
    assert _looks_until_seen(PREDICTIVE, window, 1800.0)[0] == 1
    # And as a Wait state's timestamp, UTC in whole seconds, never earlier
    assert timestamp(first) == datetime.fromtimestamp(math.ceil(first), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_run_shorter_than_any_recent_one_but_within_the_plans_spread_is_seen_within_a_tenth() -> None:
    # Given a plan whose last 20 runs took 25 to 35 minutes
    history = [1500.0 + 600.0 * n / 19 for n in range(20)]
    window = first_look(history, PREDICTIVE.max_lag_share)
    assert window is not None
    # When a run ends after 23.5 minutes, shorter than any of them
    _, seen = _looks_until_seen(PREDICTIVE, window, 1410.0)
    # Then the ladder had started low enough to see it within a tenth of its duration
    assert seen - 1410.0 <= 0.1 * 1410.0
    # And a typical run still costs few looks
    assert _looks_until_seen(PREDICTIVE, window, 1800.0)[0] <= 4


def test_after_the_first_look_looks_are_a_tenth_of_the_elapsed_time_apart() -> None:
    # Given a run still going at its first look, 30 minutes in
    now = T0 + 1800
    # Then the next look is 180 s later, a tenth of the elapsed time
    assert _next(PREDICTIVE, now=now, looks=2, window=1800.0) == pytest.approx(now + 180)
    # And never more than max_wait_seconds later, nor closer than the floor for short runs
    assert _next(Polling(max_wait_seconds=60), now=now, looks=2, window=1800.0) == pytest.approx(now + 60)
    assert _next(PREDICTIVE, now=T0 + 20, looks=2, window=20.0) == pytest.approx(T0 + 20 + MIN_LOOK_INTERVAL_SECONDS)


def test_without_history_the_route_backoff_applies_after_the_trigger() -> None:
    # Given no history (a plan's first run), or a route asking for backoff
    for polling, window in ((PREDICTIVE, None), (BACKOFF, 1800.0)):
        # Then the first look is first_wait_seconds after the trigger, then x1.5 each look, to the ceiling
        assert _next(polling, now=T0, looks=1, window=window) == T0 + 30
        assert _next(polling, now=T0 + 30, looks=2, window=window) == T0 + 30 + 45
        assert _next(polling, now=T0 + 1000, looks=20, window=window) == T0 + 1000 + 300


def test_an_adopted_run_is_looked_at_at_once_and_timed_from_its_own_start() -> None:
    # Given a result-sync job that adopted a run started 10 minutes before the relay saw it
    status = ExecutionStatus(run_id=1001, status="STATUS_IN_PROGRESS", result="QUEUED", finished=False)
    started = status.model_copy(update={"started_at": T0 - 600})
    # Then the run's own start anchors the prediction (an absent or later vendor time does not)
    assert anchor(_run(), started, now=T0) == T0 - 600
    assert anchor(_run(), status, now=T0) == T0
    assert anchor(_run(), status.model_copy(update={"started_at": T0 + 5}), now=T0) == T0
    # And with no look so far it is looked at at once (it may have finished), then at its first rung
    assert _next(BACKOFF, now=T0, looks=0, window=None) == T0
    assert _next(PREDICTIVE, now=T0, looks=0, window=1800.0, start=T0 - 600) == T0
    assert _next(PREDICTIVE, now=T0, looks=1, window=1800.0, start=T0 - 600) == T0 + 1200


def test_no_look_is_planned_past_the_deadline() -> None:
    # Given a two-hour deadline and a run predicted far beyond it
    polling = Polling(deadline_seconds=7200)
    # Then the next look is the moment after the deadline, which reports the timeout
    assert _next(polling, now=T0 + 7100, looks=9, window=1800.0) == T0 + 7201
    assert _next(polling, now=T0, looks=1, window=30 * 3600.0) == T0 + 7201


def test_an_aborted_run_in_the_history_does_not_pull_the_first_look_in() -> None:
    # Given nineteen runs of about 30 minutes and one aborted after a minute
    regular = [1800.0 + 10 * (n % 5) for n in range(19)]
    window = first_look([*regular, 60.0], PREDICTIVE.max_lag_share)
    # Then the aborted run is an outlier: the first look stays where the regular runs put it
    assert window is not None
    assert window == pytest.approx(first_look(regular, PREDICTIVE.max_lag_share), rel=0.01)
    # And a run aborted like it is seen at that first look, the one thing it costs
    looks, seen = _looks_until_seen(PREDICTIVE, window, 60.0)
    assert looks == 1
    assert seen == math.ceil(window)
    # And nonsense durations are no history at all
    assert first_look([], 0.1) is None
    assert first_look([0.0, -5.0, float("inf")], 0.1) is None


def test_a_history_too_spread_for_the_looks_budget_starts_the_ladder_at_the_budget() -> None:
    # Given a plan whose runs took anything from 2 to 60 minutes
    history = [120.0 * 1.2**n for n in range(20)]
    window = first_look(history, PREDICTIVE.max_lag_share)
    assert window is not None
    # Then a run of the median duration is still seen within the looks budget
    median = statistics.median(history)
    assert _looks_until_seen(PREDICTIVE, window, median)[0] <= LOOKS_BUDGET
    assert window == pytest.approx(median / 1.1 ** (LOOKS_BUDGET - 1.5))


_SHARES = st.sampled_from([0.05, 0.1, 0.2])
_WIDE = Polling(max_wait_seconds=3600, deadline_seconds=48 * 3600)


@settings(max_examples=300, deadline=None)
@given(
    base=st.floats(min_value=30, max_value=20_000),
    factors=st.lists(st.floats(min_value=math.exp(-0.15), max_value=math.exp(0.15)), min_size=1, max_size=HISTORY_SIZE),
    beyond=st.floats(min_value=0, max_value=3),
    share=_SHARES,
)
def test_any_run_within_a_regular_historys_range_or_longer_is_seen_at_most_the_share_late(
    base: float, factors: list[float], beyond: float, share: float
) -> None:
    # Given a plan whose recent runs lie within 35 % of each other, and a run at least as long as the
    # shortest of them (up to four times the longest)
    history = [base * f for f in factors]
    duration = min(history) + beyond * max(history)
    polling = _WIDE.model_copy(update={"max_lag_share": share})
    window = first_look(history, share)
    assert window is not None
    # When the relay looks at it by the ladder
    looks, seen = _looks_until_seen(polling, window, duration)
    # Then it sees the end at most `share` of the duration late (or the 10 s floor between looks,
    # for runs of a few seconds), give or take the timestamp's rounding up to the second
    assert seen - duration <= max(share * duration, MIN_LOOK_INTERVAL_SECONDS) + 1
    # And looks one rung of the ladder per factor (1 + share) from the first look, at most
    assert looks <= 2 + math.log(max(duration, window) / window) / math.log1p(share) + duration / 3600


@settings(max_examples=300, deadline=None)
@given(
    history=st.lists(st.floats(min_value=1, max_value=20_000), min_size=1, max_size=HISTORY_SIZE),
    duration=st.floats(min_value=1, max_value=40_000),
    share=_SHARES,
)
def test_for_any_history_the_lag_and_the_looks_are_bounded(history: list[float], duration: float, share: float) -> None:
    # Given any history (outliers, a spread of hours) and any run
    polling = _WIDE.model_copy(update={"max_lag_share": share})
    window = first_look(history, share)
    assert window is not None
    looks, seen = _looks_until_seen(polling, window, duration)
    # Then a run at least as long as the first look's reach (first look / (1 + share)) is seen at
    # most `share` late; an earlier one at the first look (no sooner than the floor between looks)
    if duration >= window / (1 + share):
        assert seen - duration <= max(share * duration, MIN_LOOK_INTERVAL_SECONDS) + 1
    else:
        # (to the second: 450 s x 1.1 is 495.00000000000006 in floating point)
        assert abs(seen - max(window, MIN_LOOK_INTERVAL_SECONDS)) <= 1
    # And a run of the history's median duration is seen within the looks budget
    assert _looks_until_seen(polling, window, statistics.median(history))[0] <= LOOKS_BUDGET
    # And no run busy-polls: at most a rung per factor (1 + share), a floor step per 10 s, a ceiling step per hour
    assert looks <= 2 + math.log(max(duration, window) / window) / math.log1p(share) + 1 / share + duration / 3600


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(), atomic_items():
        dynamodb = boto3.resource("dynamodb")
        dynamodb.create_table(
            TableName="ledger",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
        yield dynamodb


def test_the_history_keeps_the_newest_runs_once_each(table: Any) -> None:
    # Given a plan with more finished runs than the history keeps
    ledger = Ledger("ledger", dynamodb=table)
    for run_id in range(1, HISTORY_SIZE + 6):
        assert ledger.record_run_duration("2741#env12", run_id, 1000.0 + run_id, keep=HISTORY_SIZE)
    # When the look that saw a run finish is repeated (a retried Lambda)
    assert not ledger.record_run_duration("2741#env12", HISTORY_SIZE + 5, 9999.0, keep=HISTORY_SIZE)
    # Then the history holds the newest runs, oldest first, each once
    durations = ledger.run_durations("2741#env12")
    assert durations == [1000.0 + run_id for run_id in range(6, HISTORY_SIZE + 6)]
    # And another plan (or environment) has a history of its own
    assert ledger.run_durations("2741#env0") == []


class _Answers:
    """A VendorSession that answers every request with one body."""

    def __init__(self, body: Any) -> None:
        self.body = body

    def request(self, method: str, path: str, **_: Any) -> Any:
        return self.body


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "status": st.sampled_from(["STATUS_COMPLETED", "STATUS_IN_PROGRESS"]) | _JSON,
            "result": _JSON,
            "message": _JSON,
            "startTime": _JSON | st.integers(min_value=0, max_value=2**53),
            "endTime": _JSON | st.integers(min_value=0, max_value=2**53),
            "duration": _JSON | st.floats(min_value=-1e6, max_value=1e9),
        },
    )
)
# a denormal duration: positive milliseconds that round to 0 seconds
@example(body={"status": "STATUS_COMPLETED", "result": None, "duration": 5e-324})
def test_any_status_answer_gives_a_status_or_none_times(body: dict[str, Any]) -> None:
    # Given any status answer (times missing, null, strings, negative, huge)
    status = testsigma.TestsigmaClient(_Answers(body)).status(1001)  # type: ignore[arg-type]
    # Then the times are positive seconds or unknown, never an exception
    for value in (status.started_at, status.duration_seconds):
        assert value is None or 0 < value < 1e12
    assert status.duration_seconds is None or status.finished


def test_the_documented_completed_answer_gives_its_duration() -> None:
    # Given Testsigma's documented answer for a completed run (vendor-api/testsigma-trigger-and-status.txt)
    body = {"status": "STATUS_COMPLETED", "startTime": 1633512584000, "endTime": 1633512598000, "duration": 13647}
    status = testsigma.TestsigmaClient(_Answers(body)).status(302)  # type: ignore[arg-type]
    assert (status.finished, status.started_at, status.duration_seconds) == (True, 1633512584.0, 13.647)
    # And without `duration`, the end minus the start
    del body["duration"]
    assert testsigma.TestsigmaClient(_Answers(body)).status(302).duration_seconds == 14.0  # type: ignore[arg-type]


def test_a_route_names_its_polling_mode_or_gets_predictive() -> None:
    # Given routes with and without a mode
    assert Polling().mode == "predictive"
    assert Polling(mode="backoff").mode == "backoff"
    # Then a mode or a lag share the relay does not know is refused, naming the key
    for bad in ({"mode": "sometimes"}, {"max_lag_share": 0}, {"max_lag_share": 2}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            Polling.model_validate(bad)
