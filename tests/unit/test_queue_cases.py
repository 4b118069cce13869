"""BrowserStack's case additions (`update-test-cases`) go out several at once: the budget is kept busy
while each call's round trip is waited out, and `cases_queued` only ever advances over confirmed calls,
so a halving of the per-call size, a failed call or an invocation out of time resumes without losing a
case (adding a case the run holds has no effect: what was in flight beyond is simply sent again)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from testrelay.errors import VendorUnavailable
from testrelay.models.routes import BrowserStackTmTarget
from testrelay.relay.writers import browserstack_tm
from testrelay.relay.writers.common import Budget, Checkpoint
from testrelay.vendors.browserstack_tm import TooManyCases

CASES = 240
FIRST = 10
"""Cases the create call carried."""


class _Ledger(Checkpoint):
    def __init__(self) -> None:
        self.job_id, self.target = "job", "bs"
        self.record: dict[str, Any] = {"cases_queued": FIRST}
        self.queued: list[int] = []

    def save(self, **fields: Any) -> None:
        self.record.update(fields)
        if "cases_queued" in fields:
            self.queued.append(int(fields["cases_queued"]))


class _Plan:
    def read_from(self, _bucket: str, position: int) -> Iterator[dict[str, Any]]:
        for index in range(position, CASES):
            yield {"case": f"TC-{index}"}


class _Client:
    """Adds cases to one run; refuses calls of more than `cap` cases as BrowserStack documents; fails
    the call starting at `fail_at` once; calls complete out of order."""

    def __init__(self, cap: int = 1000, fail_at: str | None = None) -> None:
        self.cap, self.fail_at = cap, fail_at
        self.run: set[str] = set()
        self.lock = threading.Lock()
        self.in_flight = self.peak = self.calls = 0
        self.rng = random.Random(5)

    def add_cases(self, _project: str, _run: str, cases: list[str], _configurations: Any) -> str:
        with self.lock:
            self.calls += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            delay = self.rng.random() * 0.01
        try:
            time.sleep(delay)
            if len(cases) > self.cap:
                raise TooManyCases("browserstack-tm", "max_test_cases_per_request_exceeded", 422)
            if cases[0] == self.fail_at:
                self.fail_at = None
                raise VendorUnavailable("browserstack-tm", "HTTP 503", 503)
            with self.lock:
                self.run.update(cases)
            return "unique"
        finally:
            with self.lock:
                self.in_flight -= 1


def _writer(client: _Client, ledger: _Ledger, per_call: int = 20) -> Any:
    writer = browserstack_tm._Writer.__new__(browserstack_tm._Writer)
    writer.target = BrowserStackTmTarget(
        kind="browserstack_tm", name="bs", project_id="PR-1", match_by=["id_token"], cases_per_call=per_call
    )
    writer.checkpoint, writer.client, writer.bucket = ledger, client, "bucket"
    return writer


def _all_cases() -> set[str]:
    return {f"TC-{index}" for index in range(FIRST, CASES)}


def test_additions_go_out_several_at_once_and_the_position_only_moves_over_confirmed_calls() -> None:
    # Given a run created with its first cases, and four calls allowed in flight
    client, ledger = _Client(), _Ledger()
    # When the rest are queued
    assert _writer(client, ledger).queue_cases(_Plan(), "RUN-1", Budget(time.monotonic() + 60))
    # Then every case is in the run, calls overlapped, and the saved position only ever grew, to the end
    assert client.run == _all_cases()
    assert client.peak > 1
    assert ledger.queued == sorted(ledger.queued)
    assert ledger.queued[-1] == CASES


def test_a_per_call_cap_found_while_calls_are_in_flight_halves_the_size_and_loses_no_case() -> None:
    client, ledger = _Client(cap=5), _Ledger()
    assert _writer(client, ledger, per_call=20).queue_cases(_Plan(), "RUN-1", Budget(time.monotonic() + 60))
    assert client.run == _all_cases()
    assert ledger.record["cases_per_call"] == 5
    assert ledger.record["cases_queued"] == CASES


def test_a_failed_call_stops_at_the_last_confirmed_run_and_the_next_invocation_completes() -> None:
    # Given a call in the middle that fails (not applied)
    client, ledger = _Client(fail_at="TC-110"), _Ledger()
    writer = _writer(client, ledger)
    # When the additions are queued, the error comes out once the calls in flight settled
    with pytest.raises(VendorUnavailable):
        writer.queue_cases(_Plan(), "RUN-1", Budget(time.monotonic() + 60))
    # Then the position is no further than the failed call, and a later invocation adds the rest
    assert ledger.record["cases_queued"] <= 110
    assert writer.queue_cases(_Plan(), "RUN-1", Budget(time.monotonic() + 60))
    assert client.run == _all_cases()
    assert ledger.record["cases_queued"] == CASES


def test_an_invocation_out_of_time_hands_over_where_its_confirmed_calls_end() -> None:
    client, ledger = _Client(), _Ledger()
    writer = _writer(client, ledger)
    # a budget already spent still grants its first unit of work
    assert not writer.queue_cases(_Plan(), "RUN-1", Budget(time.monotonic() - 1))
    assert ledger.record["cases_queued"] == FIRST + 20
    assert writer.queue_cases(_Plan(), "RUN-1", Budget(time.monotonic() + 60))
    assert client.run == _all_cases()
