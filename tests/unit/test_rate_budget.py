"""The shared rate budget: one DynamoDB item (real conditional updates, through moto) paces every
process of a vendor account together; a throttle seen by one holds everybody back."""

from __future__ import annotations

import collections
import itertools
import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws
from requests.adapters import BaseAdapter

from testrelay.aws import rate_budget
from testrelay.aws.rate_budget import SharedBudget, account_hash
from testrelay.errors import ConfigurationError, VendorThrottled
from testrelay.relay import services
from testrelay.settings import Settings
from testrelay.sync.rate_limit import (
    MAX_OVERSLEPT,
    Announced,
    RateLimited,
    RateLimiter,
    RateSpec,
    announced_by,
    reset_seconds,
)
from testrelay.vendors.http import RetryPolicy, VendorSession
from testrelay.vendors.testsigma_tm import is_tm_throttle
from testrelay_local.atomic_dynamodb import atomic_items
from testrelay_local.sandbox import SandboxSeed
from testrelay_local.sandbox.messages import Request
from testrelay_local.sandbox.testsigma_tm import TestsigmaTmApi as TmSandbox
from testrelay_local.sandbox.throttle import Throttle, ThrottleSettings

TABLE = "ledger"
BS = RateSpec(300, 60.0, 0.95)


class FakeClock:
    """Epoch-like virtual time; sleeping moves it forward (every "process" shares it)."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    rate_budget.dynamodb_client.cache_clear()
    with mock_aws(), atomic_items():
        client = boto3.client("dynamodb")
        client.create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        )
        yield client
    rate_budget.dynamodb_client.cache_clear()


def _budget(clock: FakeClock, spec: RateSpec = BS, **kwargs: Any) -> SharedBudget:
    return SharedBudget(TABLE, "browserstack-tm", "acct", spec, clock=clock, sleep=clock.sleep, **kwargs)


def _max_in_window(sent: list[float], period: float) -> int:
    sent = sorted(sent)
    best, start = 0, 0
    for end, moment in enumerate(sent):
        while moment - sent[start] >= period - 1e-9:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_two_processes_sharing_one_item_never_exceed_the_limit_together(table: Any) -> None:
    clock = FakeClock()
    processes = [_budget(clock), _budget(clock)]
    draw = random.Random(7)
    sent: list[float] = []
    for _ in range(700):
        budget = draw.choice(processes)
        budget.acquire()
        sent.append(clock())
        clock.sleep(draw.uniform(0, 0.05))  # the call itself
    assert _max_in_window(sent, 60.0) <= 300
    # ... and together they use the budget: >= 90 % of the limit sustained
    per_minute = len(sent) / ((max(sent) - min(sent)) / 60)
    assert per_minute >= 0.9 * 300
    # leases cut the DynamoDB calls
    assert sum(p.reservations for p in processes) < len(sent) / 2


def test_a_pause_asked_for_by_the_vendor_holds_back_every_process(table: Any) -> None:
    clock = FakeClock()
    first, second = _budget(clock), _budget(clock)
    first.acquire()
    second.acquire()
    # The vendor answered `first` with a 429 and no Retry-After: BrowserStack's documented 60 s
    first.hold_off(60.0)
    before = clock()
    # A call that may wait only 20 s is refused at once (the state machine's Retry waits instead)
    with pytest.raises(RateLimited) as held:
        second.acquire(max_wait=20.0)
    assert held.value.wait == pytest.approx(60.0, abs=1.0)
    assert clock() == before
    # One that may wait, waits the pause out: the other process learnt of it through the item
    second.acquire()
    assert clock() - before >= 60.0 - 1e-6
    item = table.get_item(TableName=TABLE, Key=second.key)["Item"]
    assert int(item["throttles"]["N"]) == 1
    assert float(item["hold_until"]["N"]) == pytest.approx(before + 60.0)


def test_slots_too_late_to_keep_the_limit_are_dropped_not_sent_in_a_burst(table: Any) -> None:
    clock = FakeClock()
    budget = _budget(clock, lease=4)
    budget.acquire()
    budget.acquire()  # the lease has grown: several slots are held
    clock.sleep(30.0)  # the process stalls
    budget.acquire()
    assert budget.dropped >= 1
    sent = []
    for _ in range(50):
        budget.acquire()
        sent.append(clock())
    assert min(b - a for a, b in itertools.pairwise(sent)) >= BS.interval - BS.max_lateness() - 1e-6


class _Throttled:
    """A DynamoDB client that throttles every call."""

    def __init__(self, code: str = "ThrottlingException") -> None:
        self.code = code
        self.calls = 0

    def update_item(self, **_: Any) -> Any:
        self.calls += 1
        raise ClientError({"Error": {"Code": self.code, "Message": "slow down"}}, "UpdateItem")


def test_a_throttled_table_falls_back_to_a_share_of_the_limit_then_returns(table: Any) -> None:
    clock = FakeClock()
    throttled = _Throttled()
    budget = _budget(clock, fallback_share=4, fallback_seconds=30.0, client=throttled)
    start = clock()
    sent = []
    for _ in range(30):
        budget.acquire()
        sent.append(clock())
    # paced at a quarter of the rate, alone
    assert (sent[-1] - sent[0]) / 29 == pytest.approx(4 * BS.interval, rel=0.01)
    assert throttled.calls == 1
    clock.now = start + 31
    budget.client = None  # the table answers again
    budget.acquire()
    assert budget.reservations == 1


def test_a_missing_table_or_permission_is_a_configuration_error(table: Any) -> None:
    clock = FakeClock()
    with pytest.raises(ConfigurationError, match="cannot use table"):
        _budget(clock, client=_Throttled("AccessDeniedException")).acquire()
    missing = SharedBudget("no-such-table", "browserstack-tm", "acct", BS, clock=clock, sleep=clock.sleep)
    with pytest.raises(ConfigurationError, match="ResourceNotFoundException"):
        missing.acquire()


def test_real_threads_sharing_the_item_keep_the_limit(table: Any) -> None:
    spec = RateSpec(40, 1.0, 0.9)
    sent: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        budget = SharedBudget(TABLE, "testsigma-tm", "acct", spec, lease=2)
        for _ in range(30):
            budget.acquire()
            with lock:
                sent.append(time.time())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sent) == 90
    assert _max_in_window(sent, 1.0) <= 40


def test_the_account_is_named_without_the_key() -> None:
    name = account_hash("browserstack-tm", "test-management.browserstack.com", "alice")
    assert len(name) == 16
    assert "alice" not in name
    assert name != account_hash("browserstack-tm", "test-management-eu.browserstack.com", "alice")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1800000005", 5.0), ("1800000005000", 5.0), ("5", 5.0), ("0.5", 0.5), ("Fri, 15 Jan 2027 08:00:05 GMT", None)],
)
def test_every_form_of_the_reset_header_is_read(value: str, expected: float | None) -> None:
    seconds = reset_seconds(value, 1_800_000_000.0)
    if expected is None:
        assert seconds is not None
        assert seconds >= 0
    else:
        assert seconds == pytest.approx(expected)
    read = announced_by("x-tms-api-", clock=lambda: 1_800_000_000.0)
    assert read({}) is None
    assert read({"x-tms-api-limit": "10", "x-tms-api-remaining": "0", "x-tms-api-reset": "1800000001"}) == Announced(
        10, 0, 1.0
    )


# --- the vendor session on the shared budget -------------------------------------------------------

Answer = tuple[int, Any, dict[str, str]]


class ScriptedAdapter(BaseAdapter):
    def __init__(self, answers: list[Answer], clock: FakeClock) -> None:
        super().__init__()
        self.answers, self.clock = answers, clock
        self.sent: list[float] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(self.clock())
        status, body, headers = self.answers.pop(0) if self.answers else (200, {"ok": True}, {})
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        response.headers.update(headers)
        response.request = request
        return response

    def close(self) -> None:
        pass


def _session(
    budget: SharedBudget, answers: list[Answer], clock: FakeClock, **kwargs: Any
) -> tuple[VendorSession, ScriptedAdapter]:
    adapter = ScriptedAdapter(answers, clock)
    http = requests.Session()
    http.mount("https://", adapter)
    kwargs.setdefault("retry", RetryPolicy(attempts=6, max_in_call_wait=125.0))
    session = VendorSession(
        "browserstack-tm", "https://vendor.test", {}, session=http, sleep=clock.sleep, limiter=budget, **kwargs
    )
    return session, adapter


def test_a_429_without_retry_after_makes_every_worker_wait_the_documented_60_s(table: Any) -> None:
    clock = FakeClock()
    one, one_http = _session(_budget(clock), [(429, {"message": "rate limit exceeded"}, {})], clock, throttle_wait=60.0)
    two, two_http = _session(_budget(clock), [], clock, throttle_wait=60.0)
    two.request("GET", "/runs")
    throttled_at = clock()
    # `one` is answered 429 without Retry-After: it waits 60 s in the call, then succeeds
    assert one.request("GET", "/runs") == {"ok": True}
    assert one_http.sent[1] - one_http.sent[0] >= 60.0 - 1e-6
    # ... and `two`, another process, sends nothing before the 60 s are over
    clock.now = throttled_at + 1
    two.request("GET", "/runs")
    assert two_http.sent[-1] >= throttled_at + 60.0 - 1e-6


def test_retry_after_is_honoured_and_a_longer_hold_escapes_to_the_state_machine(table: Any) -> None:
    clock = FakeClock()
    one, http = _session(_budget(clock), [(429, {}, {"Retry-After": "7"})], clock, throttle_wait=60.0)
    assert one.request("GET", "/runs") == {"ok": True}
    assert http.sent[1] - http.sent[0] == pytest.approx(7.0, abs=0.5)
    # A pause longer than the call may wait: VendorThrottled at once, nothing sent
    other, other_http = _session(_budget(clock), [], clock, retry=RetryPolicy(attempts=4, max_in_call_wait=20.0))
    one.limiter.hold_off(300.0)  # type: ignore[union-attr]
    with pytest.raises(VendorThrottled, match="rate budget holds calls back"):
        other.request("GET", "/runs")
    assert other_http.sent == []


def test_testsigma_tm_is_paced_by_its_headers_and_its_500_is_a_throttle(table: Any) -> None:
    clock = FakeClock()
    spec = RateSpec(10, 1.0, 0.8)
    reset = str(int(clock()) + 1)
    spent = {"x-tms-api-limit": "10", "x-tms-api-remaining": "0", "x-tms-api-reset": reset}
    # another client of the account spent the next window too
    next_spent = {**spent, "x-tms-api-reset": str(int(reset) + 1)}
    read: Callable[[Any], Announced | None] = announced_by("x-tms-api-", clock=clock)
    tm, http = _session(
        SharedBudget(TABLE, "testsigma-tm", "acct", spec, clock=clock, sleep=clock.sleep),
        [(200, {"n": 1}, spent), (500, {"message": "rate limit exceeded"}, next_spent), (200, {"n": 2}, {})],
        clock,
        is_throttle=is_tm_throttle,
        announced=read,
        throttle_wait=1.0,
    )
    assert tm.request("PUT", "/runs/1/test_cases", json={}) == {"n": 1}
    # "0 remaining": the next call waits for the reset instead of being throttled
    assert tm.request("PUT", "/runs/1/test_cases", json={}) == {"n": 2}
    assert http.sent[1] >= float(reset) - 1e-6
    # the throttle (HTTP 500) is waited out until the reset it announced, then the call goes through
    assert http.sent[2] >= float(reset) + 1.0 - 1e-6


# --- how close to the limit the pace may go --------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(2, 400),
    period=st.sampled_from([1.0, 3.0, 60.0]),
    pace=st.floats(0.5, 0.99),
    offset=st.floats(0, 1),
    seed=st.integers(0, 2**16),
)
def test_slots_late_by_less_than_the_margin_never_exceed_the_limit_in_any_window(
    limit: int, period: float, pace: float, offset: float, seed: int
) -> None:
    # Given slots one interval apart, each call landing anywhere within the pace's whole margin after
    # its slot (the lateness the budget allows plus as much again of jitter)
    spec = RateSpec(limit, period, pace)
    draw = random.Random(seed)
    margin = 2 * spec.max_lateness() * 0.999
    arrivals = sorted(
        offset * period + index * spec.interval + draw.uniform(0, margin) for index in range(3 * limit + 2)
    )
    # Then no window of the period, sliding or aligned on the clock, holds more than the limit
    assert _max_in_window(arrivals, period) <= limit
    fixed = collections.Counter(math.floor(moment / period) for moment in arrivals)
    assert max(fixed.values()) <= limit


def test_testsigma_tm_is_paced_at_least_at_nine_tenths_of_its_limit_by_default() -> None:
    spec = services.rate_spec("testsigma-tm", Settings())
    assert spec.limit * spec.pace / spec.period >= 0.9 * spec.limit
    assert spec.fills_window()
    # room left for a late slot, and as much again for jitter on the way
    assert spec.max_lateness() >= 0.02


@pytest.mark.parametrize("counting", ["fixed", "sliding"])
@pytest.mark.parametrize("reset_format", ["epoch_seconds", "epoch_millis", "delta_seconds"])
def test_testsigma_tm_at_its_default_pace_fills_the_budget_without_a_throttle_however_it_counts(
    table: Any, counting: str, reset_format: str
) -> None:
    # Given the sandbox's throttle at Testsigma TM's reported 10 per second, counting one of the ways
    # the documents leave open and announcing limit/remaining/reset in one of the reset forms; its
    # windows not aligned on the first call
    clock = FakeClock(1_800_000_000.37)
    arrived = [clock()]
    throttle = Throttle(clock=lambda: arrived[0])
    throttle.configure(ThrottleSettings(vendors={"testsigma_tm": {"counting": counting, "reset_format": reset_format}}))
    api = TmSandbox(SandboxSeed.demo(), clock=lambda: arrived[0])
    spec = services.rate_spec("testsigma-tm", Settings())
    budget = SharedBudget(TABLE, "testsigma-tm", "acct", spec, clock=clock, sleep=clock.sleep)
    read = announced_by("x-tms-api-", clock=clock)
    request = Request("PUT", "/projects/p/test_runs/r/test_cases", headers={"authorization": "Bearer key"})
    draw = random.Random(counting + reset_format)
    arrivals, throttled = [], 0
    # When 400 calls go out at the budget's slots, each sent up to the lateness it allows and arriving
    # up to as much again later, every answer's headers read back into the budget
    for _ in range(400):
        budget.acquire()
        clock.sleep(draw.uniform(0, spec.max_lateness()))
        arrived[0] = max(arrived[0], clock() + draw.uniform(0, spec.max_lateness()))
        refused, headers = throttle.admit(api, request)
        throttled += refused is not None
        arrivals.append(arrived[0])
        announced = read(headers)
        if announced is not None:
            budget.observe(announced)
    # Then the vendor throttles none of them, and they keep at least 90 % of its limit from first to last
    assert throttled == 0
    assert (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) >= 0.9 * spec.limit
    assert budget.dropped == 0


def test_a_spent_quota_longer_than_a_window_holds_the_budget_even_at_a_pace_that_fills_windows(table: Any) -> None:
    clock = FakeClock()
    spec = RateSpec(10, 1.0, 0.95)
    budget = SharedBudget(TABLE, "testsigma-tm", "acct", spec, clock=clock, sleep=clock.sleep)
    budget.acquire()
    # "0 remaining" until the window ends: what our own pace does at the top of a window, no pause
    budget.observe(Announced(10, 0, 0.9))
    before = clock()
    budget.acquire()
    assert clock() - before <= spec.interval + 1e-6
    # "0 remaining" for the next 30 s: somebody else spent a longer quota; everybody waits for it
    budget.observe(Announced(10, 0, 30.0))
    before = clock()
    budget.acquire()
    assert clock() - before >= 30.0 - 1e-6


class _OversleepingClock(FakeClock):
    """A loaded host: every `every`-th sleep wakes `by` seconds after it should have."""

    def __init__(self, every: int, by: float) -> None:
        super().__init__()
        self.every, self.by, self.sleeps = every, by, 0

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        super().sleep(seconds + (self.by if self.sleeps % self.every == 0 else 0.0))


def _process_limiter(clock: FakeClock, spec: RateSpec) -> RateLimiter:
    return RateLimiter(spec.limit, spec.period, clock=clock, sleep=clock.sleep, pace=spec.pace)


@pytest.mark.parametrize("pacer", ["shared budget", "process limiter"])
def test_a_caller_woken_too_late_for_its_slot_takes_a_later_one_instead_of_bunching(table: Any, pacer: str) -> None:
    # Given Testsigma TM's pace, and a host whose every third wait ends most of an interval late
    spec = services.rate_spec("testsigma-tm", Settings())
    clock = _OversleepingClock(every=3, by=0.8 * spec.interval)
    budget = _budget(clock, spec) if pacer == "shared budget" else _process_limiter(clock, spec)
    sent: list[float] = []
    # When 300 calls go out one after the other
    for _ in range(300):
        budget.acquire()
        sent.append(clock())
    # Then no two calls leave closer together than the interval less the margin the pace leaves,
    # and so no window of the vendor's second holds more than its limit
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= spec.interval - spec.margin() - 1e-6
    assert _max_in_window(sent, spec.period) <= spec.limit


def test_a_host_that_always_wakes_late_still_sends(table: Any) -> None:
    # Given a host whose every wait ends two intervals late
    spec = services.rate_spec("testsigma-tm", Settings())
    clock = _OversleepingClock(every=1, by=2 * spec.interval)
    budget = _budget(clock, spec)
    # When calls are asked for, each one still goes out, after at most MAX_OVERSLEPT slots given up
    before = clock()
    for _ in range(20):
        budget.acquire()
    assert budget.calls == 20
    assert clock() - before <= 20 * (MAX_OVERSLEPT + 1) * 3 * spec.interval
