"""What every writer shares: the invocation's time budget, the target's checkpoint, the plan, the outcome."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from testrelay.models.job import Job
from testrelay.models.routes import BrowserStackTmTarget, Target, TestsigmaTmTarget
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
