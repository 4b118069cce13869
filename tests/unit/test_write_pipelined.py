"""Pipelined write-back (writers.common.write_pipelined): several batches in flight at once, completing in
any order, under lost answers, refusals and a worker that dies, still land at the vendor exactly once; the
checkpoint only ever advances over confirmed batches.

The vendor here is a thread-safe store with the vendors' fault kinds (applied-then-answer-lost, refused
before applying); the checkpoint is the ledger record's fields kept in memory (the ledger itself is
exercised by the e2e tests through the real state machine)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from testrelay.errors import VendorOutcomeUnknown, VendorThrottled
from testrelay.relay.writers import common
from testrelay.relay.writers.common import Budget, Checkpoint, HandOver, Listing, Unconfirmed, write_pipelined

BATCH = 5
PAGE = 40


class _Ledger(Checkpoint):
    """The target's checkpoint record without DynamoDB; every save is recorded in order."""

    def __init__(self) -> None:
        self.job_id, self.target = "job", "target"
        self.record: dict[str, Any] = {}
        self.saves: list[dict[str, Any]] = []

    def save(self, **fields: Any) -> None:
        self.saves.append(fields)
        self.record.update(fields)


class _Vendor:
    """Applies each entry it is sent; faults drawn per call from `rng`."""

    def __init__(self, rng: random.Random, lost: float, refused: float) -> None:
        self.rng, self.lost, self.refused = rng, lost, refused
        self.applied: list[int] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.pages_read = 0

    def send(self, entries: list[dict[str, Any]]) -> None:
        with self.lock:
            roll = self.rng.random()
            delay = self.rng.random() * 0.004
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            time.sleep(delay)  # calls complete out of order
            if roll < self.refused:
                raise VendorThrottled("vendor", "429 (not applied)", 429)
            with self.lock:
                self.applied.extend(entry["n"] for entry in entries)
            if roll < self.refused + self.lost:
                raise VendorOutcomeUnknown("vendor", "answer lost after the vendor applied the batch")
        finally:
            with self.lock:
                self.in_flight -= 1

    def page(self, position: int | None) -> tuple[list[dict[str, Any]], int | None]:
        """What it holds, PAGE entries a page (a read-back reads it page by page)."""
        with self.lock:
            start = position or 0
            held = self.applied[start : start + PAGE]
            following = start + PAGE if start + PAGE < len(self.applied) else None
        self.pages_read += 1
        return [{"n": n} for n in held], following

    def listing(self) -> Listing:
        return Listing(self.page, _key)


def _batches(total: int, start: int) -> Iterator[list[dict[str, Any]]]:
    entries = [{"n": n} for n in range(start, total)]
    for index in range(0, len(entries), BATCH):
        yield entries[index : index + BATCH]


def _key(entry: dict[str, Any]) -> int:
    return int(entry["n"])


def _write_until_done(ledger: _Ledger, vendor: _Vendor, total: int, in_flight: int) -> int:
    """Invokes the writer as the state machine does (again after a throttle, a lost outcome or a death)
    until everything is written; returns the invocations it took."""
    for invocation in range(1, 200):
        try:
            if write_pipelined(
                ledger,
                _batches(total, ledger.written),
                vendor.send,
                vendor.listing(),
                Budget(float("inf")),
                in_flight=in_flight,
            ):
                return invocation
        except (VendorThrottled, Unconfirmed, HandOver, _Died):
            continue
    raise AssertionError("never finished")


class _Died(Exception):
    pass


@pytest.mark.parametrize("seed", range(8))
def test_batches_in_flight_under_faults_land_exactly_once(seed: int) -> None:
    # Given a vendor that loses the answer to 15 % of calls after applying them and refuses 15 %,
    vendor = _Vendor(random.Random(seed), lost=0.15, refused=0.15)
    ledger = _Ledger()
    # When 400 results are written with 4 batches in flight, invocation after invocation
    invocations = _write_until_done(ledger, vendor, 400, in_flight=4)
    # Then each result is at the vendor exactly once, the checkpoint says all of them and nothing is pending
    assert sorted(vendor.applied) == list(range(400))
    assert (ledger.written, ledger.pending) == (400, 0)
    assert invocations > 1
    # And batches really were in flight together
    assert vendor.peak_in_flight > 1
    # And `written` never moved backwards, nor past a batch that was not confirmed
    positions = [save["written"] for save in ledger.saves if "written" in save]
    assert positions == sorted(positions)


def test_a_worker_that_dies_with_batches_in_flight_is_reconciled_without_duplicates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a worker that dies after the vendor confirmed its 7th batch (later ones may be applied too)
    vendor = _Vendor(random.Random(11), lost=0.0, refused=0.0)
    ledger = _Ledger()
    confirmed = 0

    def die_at_seventh(target: str, position: int) -> None:
        nonlocal confirmed
        confirmed += 1
        if confirmed == 7:
            raise _Died(f"{target} died at {position}")

    monkeypatch.setattr(common, "batch_applied_hook", die_at_seventh)
    with pytest.raises(_Died):
        write_pipelined(ledger, _batches(300, 0), vendor.send, vendor.listing(), Budget(float("inf")), in_flight=4)
    # Then what it may have left at the vendor is still pending: beyond `written`, covering every applied batch
    assert ledger.written < len(vendor.applied) <= ledger.pending
    monkeypatch.setattr(common, "batch_applied_hook", None)
    # When the next invocation runs, it reconciles and writes the rest
    _write_until_done(ledger, vendor, 300, in_flight=4)
    # Then nothing is at the vendor twice
    assert sorted(vendor.applied) == list(range(300))
    assert (ledger.written, ledger.pending) == (300, 0)


def test_an_invocation_out_of_time_stops_sending_and_saves_what_was_confirmed() -> None:
    # Given an invocation whose time budget runs out after a few batches
    vendor = _Vendor(random.Random(5), lost=0.0, refused=0.0)
    ledger = _Ledger()
    granted = iter([False] * 6)
    budget = Budget(float("inf"))
    budget.spent = lambda: next(granted, True)  # type: ignore[method-assign]
    # When it writes
    done = write_pipelined(ledger, _batches(100, 0), vendor.send, vendor.listing(), budget, in_flight=3)
    # Then it hands over with every batch it sent confirmed, nothing left pending, the rest unsent
    assert not done
    assert (ledger.written, ledger.pending) == (6 * BATCH, 0)
    assert sorted(vendor.applied) == list(range(6 * BATCH))


def test_a_range_left_in_flight_is_read_back_page_by_page_across_invocations(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a worker that died with batches in flight (`pending` a window ahead of `written`)
    vendor = _Vendor(random.Random(3), lost=0.0, refused=0.0)
    ledger = _Ledger()
    confirmed = 0

    def die_at_twelfth(target: str, position: int) -> None:
        nonlocal confirmed
        confirmed += 1
        if confirmed == 12:
            raise _Died(f"{target} died at {position}")

    monkeypatch.setattr(common, "batch_applied_hook", die_at_twelfth)
    with pytest.raises(_Died):
        write_pipelined(ledger, _batches(200, 0), vendor.send, vendor.listing(), Budget(float("inf")), in_flight=4)
    monkeypatch.setattr(common, "batch_applied_hook", None)
    applied_before = len(vendor.applied)
    assert applied_before > PAGE
    assert ledger.pending > ledger.written
    # When the next invocation's budget is spent after the read-back's first page
    spent = Budget(0.0, clock=lambda: 1.0)
    with pytest.raises(HandOver):
        write_pipelined(ledger, _batches(200, ledger.written), vendor.send, vendor.listing(), spent, in_flight=4)
    # Then it sent nothing and its position is in the checkpoint, compact (runs of positions, not keys)
    assert len(vendor.applied) == applied_before
    assert vendor.pages_read == 1
    state = ledger.record["read_back"]
    assert state["position"] == PAGE
    assert len(state["held_at"]) <= PAGE // BATCH
    # And the invocation after goes on from that page, and writes the rest with nothing twice
    _write_until_done(ledger, vendor, 200, in_flight=4)
    assert vendor.pages_read == -(-applied_before // PAGE)
    assert sorted(vendor.applied) == list(range(200))
    assert (ledger.written, ledger.pending, ledger.record["read_back"]) == (200, 0, {})
