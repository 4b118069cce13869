"""What every writer shares: the invocation's time budget, the target's checkpoint, the plan, the outcome."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
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


def read_back(
    checkpoint: Checkpoint, budget: Budget, listing: Listing, batch: list[dict[str, Any]], until: int
) -> set[Any]:
    """The keys of the batch (the one that ends at `until`) the vendor holds now.

    Only the batch's keys are kept, so the position and what was found fit in the checkpoint
    (`read_back`), saved after every page: a read-back the budget interrupts (HandOver) or a worker
    that dies goes on from its last page. A page failing transiently is read again (`_page`)."""
    wanted = {listing.key(entry) for entry in batch}
    subject = listing.subject
    subjects = {subject(entry) for entry in batch} if subject else None
    state: dict[str, Any] = dict(checkpoint.record.get("read_back") or {})
    if state.get("until") != until:
        state = {"until": until, "position": None, "held": [], "seen": [], "pages": 0}
    held = {tuple(key) for key in state["held"]}
    seen = set(state["seen"])
    read = 0
    while True:
        items, following = _page(checkpoint, budget, listing, state, read)
        read += 1
        for item in items:
            if listing.key(item) in wanted:
                held.add(listing.key(item))
            if subject is not None and subjects is not None and subject(item) in subjects:
                seen.add(subject(item))
        done = following is None or (subjects is not None and seen >= subjects)
        state.update(position=following, held=[list(key) for key in held], seen=sorted(seen), pages=state["pages"] + 1)
        if done:
            checkpoint.save(read_back={})
            logger.info("read back", target=checkpoint.target, position=until, pages=state["pages"], held=len(held))
            return held
        checkpoint.save(read_back=state)
        if budget.left() <= 0:
            raise HandOver(f"read-back of {checkpoint.target} handed over after {state['pages']} pages")


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
    (`read_back`) before anything is sent. An unknown outcome (VendorOutcomeUnknown: time-out, lost
    answer, 5xx after sending) is followed by a read-back too, and only what is missing is sent again;
    any other VendorError (refused, throttled, unavailable: not processed) propagates. `present` (from
    a read-back made earlier) leaves out what is already there; `saved` gives more fields to save with
    the confirmation. Raises Unconfirmed when the outcome stays unknown, HandOver when the budget ran
    out during a read-back."""
    before = checkpoint.pending
    if present is None and before > checkpoint.written:
        logger.info(
            "reconciling an unconfirmed batch", target=checkpoint.target, written=checkpoint.written, pending=before
        )
        present = read_back(checkpoint, budget, listing, batch, until)
    todo = [entry for entry in batch if present is None or listing.key(entry) not in present]
    checkpoint.save(pending=max(until, before))
    for attempt in range(1, RECONCILE_ATTEMPTS + 1):
        if todo:
            try:
                send(todo)
            except VendorOutcomeUnknown as exc:
                logger.warning(
                    "write outcome unknown: reading back what the vendor holds",
                    target=checkpoint.target,
                    position=until,
                    attempt=attempt,
                    error=str(exc),
                )
                now_held = read_back(checkpoint, budget, listing, batch, until)
                todo = [entry for entry in todo if listing.key(entry) not in now_held]
                if todo and attempt == RECONCILE_ATTEMPTS:
                    raise Unconfirmed(f"{len(todo)} writes still unconfirmed after {attempt} attempts: {exc}") from exc
                if todo:
                    logger.info("writes missing at the vendor: sent again", target=checkpoint.target, missing=len(todo))
                continue
            except VendorError:
                # Refused, throttled or unavailable: not processed, so nothing to reconcile (unless an
                # earlier send of this batch had an unknown outcome).
                if attempt == 1:
                    checkpoint.save(pending=before)
                raise
        if batch_applied_hook is not None:
            batch_applied_hook(checkpoint.target, until)
        fields: dict[str, Any] = {"written": until, "state": "writing", **(saved() if saved else {})}
        if until >= checkpoint.pending:
            fields.update(pending=0, unconfirmed=0)
        checkpoint.save(**fields)
        return


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
