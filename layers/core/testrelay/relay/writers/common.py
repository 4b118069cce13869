"""What every writer shares: the invocation's time budget, the target's checkpoint, the plan, the outcome."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import chain
from typing import Any

from testrelay.errors import VendorError, VendorOutcomeUnknown, VendorThrottled, VendorUnavailable
from testrelay.models.job import Job
from testrelay.models.routes import BrowserStackTmTarget, Target, TestsigmaTmTarget
from testrelay.observability import logger
from testrelay.relay import services
from testrelay.relay.collect import iter_results
from testrelay.settings import get_settings
from testrelay.sync.batching import StoredPlan, merge_results, store_plan
from testrelay.sync.matching import CaseCatalog, CaseMatcher, TargetCase

# Left for the batch in flight when the budget runs out (a throttled call may wait 2 x 60 s).
LAMBDA_MARGIN_SECONDS = 150.0


@dataclass
class Budget:
    """When this invocation stops starting batches and hands over to the next one.

    The first check always grants one more unit of work, so every invocation makes progress."""

    deadline: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _granted_first: bool = False

    @classmethod
    def for_invocation(cls, remaining_ms: int | None) -> Budget:
        seconds = get_settings().write_back_slice_seconds
        if remaining_ms is not None:
            seconds = min(seconds, remaining_ms / 1000 - LAMBDA_MARGIN_SECONDS)
        return cls(time.monotonic() + seconds)

    def spent(self) -> bool:
        if not self._granted_first:
            self._granted_first = True
            return False
        return self.clock() >= self.deadline

    def left(self) -> float:
        return self.deadline - self.clock()


class Checkpoint:
    """The target's ledger record (`TARGET#<name>`): plan, vendor run id, position written, state."""

    def __init__(self, job: Job, target: str) -> None:
        self.job_id = job.id
        self.target = target
        self.ledger = services.ledger()
        self.record: dict[str, Any] = self.ledger.get_target(job.id, target)

    def save(self, **fields: Any) -> None:
        self.ledger.update_target(self.job_id, self.target, **fields)
        self.record.update(fields)

    @property
    def written(self) -> int:
        return int(self.record.get("written", 0))

    @property
    def pending(self) -> int:
        """The end of what may have been applied beyond `written` (0: nothing): a batch was sent and
        its outcome never confirmed (an unknown answer, or a worker that died before saving)."""
        return int(self.record.get("pending") or 0)


# Sends of one batch whose outcome stays unknown (each followed by a read-back) before the invocation
# hands over with `more: true`; and invocations in a row that end so before the target is failed.
RECONCILE_ATTEMPTS = 3
UNCONFIRMED_INVOCATIONS = 5
# A read-back page that fails transiently is read again after a pause drawn up to this, doubling.
READ_BACK_FIRST_PAUSE = 0.5
READ_BACK_MAX_PAUSE = 30.0

# How far ahead of the batch going out `pending` is marked, in batches, and how often `written` is saved
# while batches are confirmed: the checkpoint's DynamoDB writes stay a few per second however fast the
# vendor calls go.
PENDING_AHEAD = 32
WRITTEN_SAVE_SECONDS = 1.0

BatchHook = Callable[[str, int], None]
batch_applied_hook: BatchHook | None = None
"""A seam for tests: called with (target, position) after the vendor confirmed a batch and before the
checkpoint is saved, where a worker that dies loses the confirmation (the harness raises there)."""


Key = Callable[[dict[str, Any]], Any]
PageRead = Callable[[Any], tuple[list[dict[str, Any]], Any]]
"""Reads the page at a position (None: the first): its items and the next page's position (None after
the last). Positions are plain JSON, kept in the checkpoint."""


@dataclass(frozen=True)
class Listing:
    """How a target shows what it holds: a paged list whose items read as the entries sent do.

    `key` gives an entry's (or a listed item's) identity once applied; `subject`, where every entry has
    an item whether written or not (a run's case rows), what the item is about, so a read-back stops
    once it saw every entry's subject. Without it only applied writes are listed: read to the end."""

    read_page: PageRead
    key: Key
    subject: Key | None = None


class Unconfirmed(Exception):
    """A batch's outcome stayed unknown after RECONCILE_ATTEMPTS sends and read-backs."""


class HandOver(Exception):
    """The invocation's budget ran out during a read-back: its position is in the checkpoint and the
    next invocation (`more: true`) goes on from there."""


def _page(checkpoint: Checkpoint, budget: Budget, listing: Listing, state: dict[str, Any], read: int) -> Any:
    """One page of the read-back; a page that fails transiently is read again after a pause (the next
    invocation's, when this one's budget is spent), until `write_back_outage_seconds` pass without a
    page read. `read`: pages read by this invocation (the first is always waited for)."""
    failures = 0
    while True:
        try:
            answer = listing.read_page(state["position"])
            state.pop("failing_since", None)
            return answer
        except (VendorUnavailable, VendorThrottled) as exc:
            failures += 1
            since = float(state.setdefault("failing_since", time.time()))
            if time.time() - since > get_settings().write_back_outage_seconds:
                checkpoint.save(read_back=state)
                raise
            pause = random.uniform(0, min(READ_BACK_MAX_PAUSE, READ_BACK_FIRST_PAUSE * 2**failures))
            if read and budget.left() <= pause:
                checkpoint.save(read_back=state)
                raise HandOver(f"read-back of {checkpoint.target} at page {read}: {exc}") from exc
            logger.info("read-back page retried", target=checkpoint.target, error=str(exc), pause_s=round(pause, 3))
            budget.sleep(pause)


def _runs(indices: set[int]) -> list[list[int]]:
    """Indices as [first, last] runs: what a read-back finds of a range is mostly contiguous, so the
    checkpoint stays small however many batches the range spans (keys could reach DynamoDB's 400 KB)."""
    runs: list[list[int]] = []
    for index in sorted(indices):
        if runs and runs[-1][1] == index - 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return runs


def _indices(runs: list[list[int]]) -> set[int]:
    return {index for first, last in runs for index in range(int(first), int(last) + 1)}


def _positions(entries: list[dict[str, Any]], key: Key) -> dict[Any, list[int]]:
    positions: dict[Any, list[int]] = {}
    for index, entry in enumerate(entries):
        positions.setdefault(key(entry), []).append(index)
    return positions


def read_back(
    checkpoint: Checkpoint, budget: Budget, listing: Listing, batch: list[dict[str, Any]], until: int
) -> set[Any]:
    """The keys of the batch (the entries that end at `until`: one batch, or the range an earlier
    invocation left unconfirmed) the vendor holds now.

    Only which of the batch's entries were found is kept, so the position and what was found fit in the
    checkpoint (`read_back`), saved after every page: a read-back the budget interrupts (HandOver) or a
    worker that dies goes on from its last page. A page failing transiently is read again (`_page`)."""
    keys = [listing.key(entry) for entry in batch]
    wanted = _positions(batch, listing.key)
    subject = listing.subject
    subjects = _positions(batch, subject) if subject else None
    state: dict[str, Any] = dict(checkpoint.record.get("read_back") or {})
    if state.get("until") != until or state.get("size") != len(batch) or "held_at" not in state:
        state = {"until": until, "size": len(batch), "position": None, "held_at": [], "seen_at": [], "pages": 0}
    held = _indices(state["held_at"])
    seen = _indices(state["seen_at"])
    read = 0
    while True:
        items, following = _page(checkpoint, budget, listing, state, read)
        read += 1
        for item in items:
            held.update(wanted.get(listing.key(item), ()))
            if subject is not None and subjects is not None:
                seen.update(subjects.get(subject(item), ()))
        done = following is None or (subjects is not None and len(seen) >= len(batch))
        state.update(position=following, held_at=_runs(held), seen_at=_runs(seen), pages=state["pages"] + 1)
        if done:
            checkpoint.save(read_back={})
            logger.info("read back", target=checkpoint.target, position=until, pages=state["pages"], held=len(held))
            return {keys[index] for index in held}
        checkpoint.save(read_back=state)
        if budget.left() <= 0:
            raise HandOver(f"read-back of {checkpoint.target} handed over after {state['pages']} pages")


@dataclass
class _Delivery:
    """One batch on its way: what is left to send of it, and whether some of it may have been applied."""

    start: int
    until: int
    batch: list[dict[str, Any]]
    todo: list[dict[str, Any]]
    maybe_applied: bool = False
    """A send of it had an unknown outcome: the vendor may hold part of it whatever happens next."""


def _deliver(
    checkpoint: Checkpoint,
    budget: Budget,
    listing: Listing,
    delivery: _Delivery,
    send: Callable[[list[dict[str, Any]]], object],
    reading: threading.Lock,
) -> None:
    """Sends the batch until the vendor confirms it. An unknown outcome (VendorOutcomeUnknown:
    time-out, lost answer, 5xx after sending) is followed by a read-back (`read_back`, one at a time
    under `reading`: the checkpoint holds one read-back's position), and only what is missing is sent
    again; any other VendorError (refused, throttled, unavailable: not processed) propagates. Raises
    Unconfirmed when the outcome stays unknown, HandOver when the budget ran out during a read-back.
    Saves no position: safe in a worker thread."""
    for attempt in range(1, RECONCILE_ATTEMPTS + 1):
        if not delivery.todo:
            return
        try:
            send(delivery.todo)
            return
        except VendorOutcomeUnknown as exc:
            delivery.maybe_applied = True
            logger.warning(
                "write outcome unknown: reading back what the vendor holds",
                target=checkpoint.target,
                position=delivery.until,
                attempt=attempt,
                error=str(exc),
            )
            with reading:
                now_held = read_back(checkpoint, budget, listing, delivery.batch, delivery.until)
            delivery.todo = [entry for entry in delivery.todo if listing.key(entry) not in now_held]
            if delivery.todo and attempt == RECONCILE_ATTEMPTS:
                raise Unconfirmed(
                    f"{len(delivery.todo)} writes still unconfirmed after {attempt} attempts: {exc}"
                ) from exc
            if delivery.todo:
                logger.info(
                    "writes missing at the vendor: sent again", target=checkpoint.target, missing=len(delivery.todo)
                )


def write_batch(
    checkpoint: Checkpoint,
    until: int,
    batch: list[dict[str, Any]],
    send: Callable[[list[dict[str, Any]]], object],
    listing: Listing,
    budget: Budget,
    present: set[Any] | None = None,
    saved: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """Sends one batch exactly once and advances the checkpoint to `until` once it is confirmed.

    The checkpoint marks the batch pending before it goes out, so a batch an earlier invocation left
    unconfirmed (an unknown answer, a worker that died after the vendor applied it) is read back
    (`read_back`) before anything is sent; sending and reading back after an unknown outcome are
    `_deliver`'s. `present` (from a read-back made earlier) leaves out what is already there; `saved`
    gives more fields to save with the confirmation. Raises Unconfirmed when the outcome stays unknown,
    HandOver when the budget ran out during a read-back."""
    before = checkpoint.pending
    if present is None and before > checkpoint.written:
        logger.info(
            "reconciling an unconfirmed batch", target=checkpoint.target, written=checkpoint.written, pending=before
        )
        present = read_back(checkpoint, budget, listing, batch, until)
    todo = [entry for entry in batch if present is None or listing.key(entry) not in present]
    delivery = _Delivery(until - len(batch), until, batch, todo)
    checkpoint.save(pending=max(until, before))
    try:
        _deliver(checkpoint, budget, listing, delivery, send, threading.Lock())
    except VendorError:
        # Refused, throttled or unavailable: not processed, so nothing to reconcile (unless a send of
        # this batch had an unknown outcome).
        if not delivery.maybe_applied:
            checkpoint.save(pending=before)
        raise
    if batch_applied_hook is not None:
        batch_applied_hook(checkpoint.target, until)
    fields: dict[str, Any] = {"written": until, "state": "writing", **(saved() if saved else {})}
    if until >= checkpoint.pending:
        fields.update(pending=0, unconfirmed=0)
    checkpoint.save(**fields)


def _reconciled(
    checkpoint: Checkpoint, budget: Budget, listing: Listing, batches: Iterator[list[dict[str, Any]]]
) -> tuple[list[list[dict[str, Any]]], int, set[Any]]:
    """The batches an earlier invocation may have left at the vendor (from `written` to `pending`), the
    end of their range and what the vendor holds of them, read back as one range; ([], 0, set())
    when nothing is pending."""
    if checkpoint.pending <= checkpoint.written:
        return [], 0, set()
    doubtful: list[list[dict[str, Any]]] = []
    until = checkpoint.written
    for batch in batches:
        doubtful.append(batch)
        until += len(batch)
        if until >= checkpoint.pending:
            break
    if not doubtful:
        return [], 0, set()
    logger.info(
        "reconciling unconfirmed batches",
        target=checkpoint.target,
        written=checkpoint.written,
        pending=checkpoint.pending,
        batches=len(doubtful),
    )
    return doubtful, until, read_back(checkpoint, budget, listing, [e for batch in doubtful for e in batch], until)


def write_pipelined(
    checkpoint: Checkpoint,
    batches: Iterable[list[dict[str, Any]]],
    send: Callable[[list[dict[str, Any]]], object],
    listing: Listing,
    budget: Budget,
    in_flight: int | None = None,
) -> bool:
    """Writes `batches` (those from the checkpoint's `written` on) with up to `in_flight` of them on
    their way at once, each exactly once; True when all are written, False when the invocation's time
    budget ran out first (the next invocation resumes at the checkpoint).

    A single sender waits out every call's round trip, so the vendor's budget idles in between: with a
    few calls in flight, each taking its slot from the rate budget as it goes out, the budget is used
    at its pace, never faster. Exactly once, with calls completing in any order:
    - what an earlier invocation left pending is read back first, as one range (`_reconciled`), and
      what the vendor holds of it is not sent again;
    - before a batch goes out, `pending` covers it (marked PENDING_AHEAD batches ahead, one save per
      so many), so whatever a dead worker left in flight is reconciled by the next invocation;
    - `written` advances only over a run of confirmed batches from the checkpoint on (saved at most
      every WRITTEN_SAVE_SECONDS, and when the invocation stops: confirmed batches not saved yet are
      within `pending`, so a death costs a read-back, never a duplicate), and a batch
      confirmed after one still in flight waits for it, and one that failed leaves `written` before it
      (confirmed batches beyond it are within `pending`, found by the read-back, never sent twice);
    - on a failure no new batch goes out, those in flight settle, the checkpoint is saved, then the
      first error propagates (Unconfirmed, HandOver, or the VendorError of a batch the vendor did not
      process). A lone batch whose read-back handed over leaves `pending` at its end, so the next
      invocation's read-back of that range goes on from its last page."""
    width = max(1, in_flight or get_settings().write_back_in_flight)
    target = checkpoint.target
    remaining = iter(batches)
    doubtful, reconcile_until, present = _reconciled(checkpoint, budget, listing, remaining)
    written = checkpoint.written
    marked = checkpoint.pending
    position = written
    confirmed: dict[int, int] = {}
    """start -> until of each batch confirmed beyond `written`."""
    unsettled: dict[Future[None], _Delivery] = {}
    failed: list[tuple[_Delivery, BaseException]] = []
    completed = True
    reading = threading.Lock()
    clock = time.monotonic
    saved_at = clock()

    def settle(done: set[Future[None]]) -> None:
        nonlocal written, saved_at
        for future in done:
            delivery = unsettled.pop(future)
            error = future.exception()
            if error is not None:
                failed.append((delivery, error))
                continue
            if batch_applied_hook is not None:
                batch_applied_hook(target, delivery.until)
            confirmed[delivery.start] = delivery.until
        while written in confirmed:
            written = confirmed.pop(written)
        if written > checkpoint.written and clock() - saved_at >= WRITTEN_SAVE_SECONDS:
            checkpoint.save(written=written, state="writing")
            saved_at = clock()

    with ThreadPoolExecutor(max_workers=width, thread_name_prefix=f"write-{target}") as pool:
        for batch in chain(doubtful, remaining):
            if failed:
                break
            if budget.spent():
                completed = False
                break
            start, until = position, position + len(batch)
            position = until
            todo = [e for e in batch if start >= reconcile_until or listing.key(e) not in present]
            if until > marked:
                # A window ahead: a worker that dies with these in flight leaves them reconcilable.
                marked = until + (max(width, PENDING_AHEAD) - 1) * len(batch)
                checkpoint.save(pending=marked)
            delivery = _Delivery(start, until, batch, todo)
            unsettled[pool.submit(_deliver, checkpoint, budget, listing, delivery, send, reading)] = delivery
            if len(unsettled) >= width:
                settle(wait(unsettled, return_when=FIRST_COMPLETED).done)
        while unsettled:
            settle(wait(unsettled, return_when=FIRST_COMPLETED).done)
    if failed:
        # Still to reconcile: the batches beyond `written` that may be at the vendor (confirmed ones
        # after a gap, unknown outcomes) and what an earlier invocation left; not a refused batch.
        maybe = [d.until for d, error in failed if d.maybe_applied or not isinstance(error, VendorError)]
        reach = max([*confirmed.values(), *maybe, reconcile_until], default=0)
        checkpoint.save(written=written, pending=reach if reach > written else 0)
        raise failed[0][1]
    # Everything sent is confirmed: only what an earlier invocation left beyond it stays to reconcile.
    if written >= reconcile_until:
        checkpoint.save(written=written, state="writing", pending=0, unconfirmed=0)
    else:
        checkpoint.save(written=written, state="writing", pending=reconcile_until)
    return completed


def unconfirmed_outcome(
    target: Target, plan: StoredPlan, checkpoint: Checkpoint, run_id: str | None, reason: Unconfirmed, **extra: Any
) -> dict[str, Any]:
    """A batch whose outcome stays unknown: invoked again (`more: true`) to reconcile, until
    UNCONFIRMED_INVOCATIONS in a row end so; then the target fails, saying why. Never `written`."""
    count = int(checkpoint.record.get("unconfirmed") or 0) + 1
    checkpoint.save(unconfirmed=count, state="unconfirmed")
    if count >= UNCONFIRMED_INVOCATIONS:
        logger.error("write outcome still unknown: target failed", target=target.name, reason=str(reason))
        # `pending` stays, so a job run again reconciles first; it gets as many invocations again.
        checkpoint.save(state="failed", unconfirmed=0)
        return outcome(
            target, plan, "failed", checkpoint.written, run_id, error="VendorOutcomeUnknown", cause=str(reason), **extra
        )
    return outcome(target, plan, "in_progress", checkpoint.written, run_id, unconfirmed=str(reason), **extra)


MatchedTarget = TestsigmaTmTarget | BrowserStackTmTarget


def results_bucket() -> str:
    return get_settings().require("results_bucket")


def matched_plan(
    job: Job,
    collected: Mapping[str, Any],
    target: MatchedTarget,
    checkpoint: Checkpoint,
    list_cases: Callable[[], Iterable[TargetCase]],
    noted: list[str] | None = None,
) -> StoredPlan:
    """The target's plan: built once (its case list fetched at most once, and only if a mode needs it).

    `noted`, when given, receives the plan's case ids as it is built, so a writer that needs them all
    at once does not read the stored plan back; it stays empty when the plan was built before."""
    if "plan" in checkpoint.record:
        return StoredPlan.model_validate(checkpoint.record["plan"])
    matcher = CaseMatcher(target, lambda: CaseCatalog.build(list_cases(), target.match_by, target.match_field))
    merged = merge_results(iter_results(collected), matcher, target.status_for)
    entries = merged.entries()
    plan = store_plan(
        results_bucket(),
        f"plans/{job.id}/{target.name}",
        entries if noted is None else _noting(entries, noted),
        batch_size=target.batch_size,
        part_size=get_settings().results_part_size,
        unmatched=merged.unmatched,
        unmatched_cases=merged.unmatched_cases,
        catalog_size=matcher.catalog.size if matcher.catalog_loaded else None,
    )
    checkpoint.save(plan=plan.model_dump(), state="planned", written=0)
    return plan


def _noting(entries: Iterator[dict[str, Any]], noted: list[str]) -> Iterator[dict[str, Any]]:
    for entry in entries:
        noted.append(entry["case"])
        yield entry


def outcome(
    target: Target, plan: StoredPlan | None, status: str, written: int, run_id: str | None, **extra: Any
) -> dict[str, Any]:
    """What the Map iteration returns; `more` asks the state machine to invoke the writer again."""
    return {
        "target": target.name,
        "kind": target.kind,
        "status": status,
        "written": written,
        "to_write": plan.entries if plan else 0,
        "unmatched": plan.unmatched if plan else 0,
        "unmatched_cases": plan.unmatched_cases if plan else [],
        "run_id": run_id,
        "more": status == "in_progress",
        **extra,
    }
