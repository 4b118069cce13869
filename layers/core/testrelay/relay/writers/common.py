"""What every writer shares: the invocation's time budget, the target's checkpoint, the plan, the outcome."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from testrelay.errors import VendorError, VendorOutcomeUnknown
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


class Unconfirmed(Exception):
    """A batch's outcome stayed unknown after RECONCILE_ATTEMPTS sends and read-backs."""


@dataclass
class _Delivery:
    """One batch on its way: what is left to send of it, and whether some of it may have been applied."""

    start: int
    until: int
    todo: list[dict[str, Any]]
    maybe_applied: bool = False
    """A send of it had an unknown outcome: the vendor may hold part of it whatever happens next."""


def _deliver(
    target: str,
    delivery: _Delivery,
    send: Callable[[list[dict[str, Any]]], object],
    held: Callable[[], set[Any]],
    key: Key,
) -> None:
    """Sends the batch until the vendor confirms it. An unknown outcome (VendorOutcomeUnknown:
    time-out, lost answer, 5xx after sending) is followed by reading back what the vendor holds, and
    only what is missing is sent again; any other VendorError (refused, throttled, unavailable: not
    processed) propagates. Raises Unconfirmed when the outcome stays unknown. Touches no checkpoint:
    safe in a worker thread."""
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
                target=target,
                position=delivery.until,
                attempt=attempt,
                error=str(exc),
            )
            now_held = held()
            delivery.todo = [entry for entry in delivery.todo if key(entry) not in now_held]
            if delivery.todo and attempt == RECONCILE_ATTEMPTS:
                raise Unconfirmed(
                    f"{len(delivery.todo)} writes still unconfirmed after {attempt} attempts: {exc}"
                ) from exc
            if delivery.todo:
                logger.info("writes missing at the vendor: sent again", target=target, missing=len(delivery.todo))


def write_batch(
    checkpoint: Checkpoint,
    until: int,
    batch: list[dict[str, Any]],
    send: Callable[[list[dict[str, Any]]], object],
    held: Callable[[], set[Any]],
    key: Key,
    present: set[Any] | None = None,
    saved: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """Sends one batch exactly once and advances the checkpoint to `until` once it is confirmed.

    The checkpoint marks the batch pending before it goes out, so a worker that dies after the vendor
    applied it is reconciled by the next invocation (`reconciled`); sending and reading back are
    `_deliver`'s. `present` (from a read-back made earlier) leaves out what is already there; `saved`
    gives more fields to save with the confirmation. Raises Unconfirmed when the outcome stays unknown."""
    delivery = _Delivery(0, until, [entry for entry in batch if present is None or key(entry) not in present])
    before = checkpoint.pending
    checkpoint.save(pending=max(until, before))
    try:
        _deliver(checkpoint.target, delivery, send, held, key)
    except VendorError:
        # Refused, throttled or unavailable: not processed, so nothing to reconcile (unless an
        # earlier send of this batch had an unknown outcome).
        if not delivery.maybe_applied:
            checkpoint.save(pending=before)
        raise
    if batch_applied_hook is not None:
        batch_applied_hook(checkpoint.target, until)
    fields: dict[str, Any] = {"written": until, "state": "writing", **(saved() if saved else {})}
    if until >= checkpoint.pending:
        fields.update(pending=0, unconfirmed=0)
    checkpoint.save(**fields)


def write_pipelined(
    checkpoint: Checkpoint,
    batches: Iterable[list[dict[str, Any]]],
    send: Callable[[list[dict[str, Any]]], object],
    held: Callable[[], set[Any]],
    key: Key,
    budget: Budget,
    present: set[Any] | None = None,
    in_flight: int | None = None,
) -> bool:
    """Writes `batches` (those from the checkpoint's `written` on) with up to `in_flight` of them on
    their way at once, each exactly once; True when all are written, False when the invocation's time
    budget ran out first (the next invocation resumes at the checkpoint).

    A single sender waits out every call's round trip, so the vendor's budget idles in between: with a
    few calls in flight, each taking its slot from the rate budget as it goes out, the budget is used
    at its pace, never faster. Exactly once, with calls completing in any order:
    - before a batch goes out, `pending` covers it (marked PENDING_AHEAD batches ahead, one save per
      so many), so whatever a dead worker left in flight is reconciled by the next invocation;
    - `written` advances only over a run of confirmed batches from the checkpoint on (saved at most
      every WRITTEN_SAVE_SECONDS, and when the invocation stops: confirmed batches not saved yet are
      within `pending`, so a death costs a read-back, never a duplicate), and a batch
      confirmed after one still in flight waits for it, and one that failed leaves `written` before it
      (confirmed batches beyond it are within `pending`, found by the read-back, never sent twice);
    - on a failure no new batch goes out, those in flight settle, the checkpoint is saved, then the
      first error propagates (Unconfirmed, or the VendorError of a batch the vendor did not process).
    `present` (a read-back of an earlier invocation's unconfirmed batches) leaves out what is there."""
    width = max(1, in_flight or get_settings().write_back_in_flight)
    target = checkpoint.target
    reconcile_until = checkpoint.pending if checkpoint.pending > checkpoint.written else 0
    written = checkpoint.written
    marked = checkpoint.pending
    position = written
    confirmed: dict[int, int] = {}
    """start -> until of each batch confirmed beyond `written`."""
    unsettled: dict[Future[None], _Delivery] = {}
    failed: list[tuple[_Delivery, BaseException]] = []
    completed = True
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
        for batch in batches:
            if failed:
                break
            if budget.spent():
                completed = False
                break
            start, until = position, position + len(batch)
            position = until
            todo = [e for e in batch if present is None or start >= reconcile_until or key(e) not in present]
            if until > marked:
                # A window ahead: a worker that dies with these in flight leaves them reconcilable.
                marked = until + (max(width, PENDING_AHEAD) - 1) * len(batch)
                checkpoint.save(pending=marked)
            delivery = _Delivery(start, until, todo)
            unsettled[pool.submit(_deliver, target, delivery, send, held, key)] = delivery
            if len(unsettled) >= width:
                settle(wait(unsettled, return_when=FIRST_COMPLETED).done)
        while unsettled:
            settle(wait(unsettled, return_when=FIRST_COMPLETED).done)
    if failed:
        # Still to reconcile: the batches beyond `written` that may be at the vendor (confirmed ones
        # after a gap, unknown outcomes) and what an earlier invocation left; not a refused batch.
        doubtful = [d.until for d, error in failed if d.maybe_applied or not isinstance(error, VendorError)]
        reach = max([*confirmed.values(), *doubtful, reconcile_until], default=0)
        checkpoint.save(written=written, pending=reach if reach > written else 0)
        raise failed[0][1]
    # Everything sent is confirmed: only what an earlier invocation left beyond it stays to reconcile.
    if written >= reconcile_until:
        checkpoint.save(written=written, state="writing", pending=0, unconfirmed=0)
    else:
        checkpoint.save(written=written, state="writing", pending=reconcile_until)
    return completed


def reconciled(checkpoint: Checkpoint, held: Callable[[], set[Any]]) -> set[Any] | None:
    """What the vendor holds, read back when an earlier invocation left a batch unconfirmed; None when
    none did (nothing to reconcile)."""
    if checkpoint.pending <= checkpoint.written:
        return None
    logger.info(
        "reconciling an unconfirmed batch",
        target=checkpoint.target,
        written=checkpoint.written,
        pending=checkpoint.pending,
    )
    return held()


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
) -> StoredPlan:
    """The target's plan: built once (its case list fetched at most once, and only if a mode needs it)."""
    if "plan" in checkpoint.record:
        return StoredPlan.model_validate(checkpoint.record["plan"])
    matcher = CaseMatcher(target, lambda: CaseCatalog.build(list_cases(), target.match_by, target.match_field))
    merged = merge_results(iter_results(collected), matcher, target.status_for)
    plan = store_plan(
        results_bucket(),
        f"plans/{job.id}/{target.name}",
        merged.entries(),
        batch_size=target.batch_size,
        part_size=get_settings().results_part_size,
        unmatched=merged.unmatched,
        unmatched_cases=merged.unmatched_cases,
        catalog_size=matcher.catalog.size if matcher.catalog_loaded else None,
    )
    checkpoint.save(plan=plan.model_dump(), state="planned", written=0)
    return plan


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
