"""Testsigma overrides: rewrite results of the job's own run (`PUT /execution_results/<run_id>/override`).

A 200 may be a partial success listing the refused ids in `errors`; a 400 refuses the whole batch.
Either way the writer goes on with the next batch and the outcome names every refused id and why.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from testrelay.errors import VendorRejected
from testrelay.models.execution import RunRef
from testrelay.models.job import Job
from testrelay.models.routes import TestsigmaOverrideTarget
from testrelay.observability import logger
from testrelay.relay import services
from testrelay.relay.collect import iter_results
from testrelay.relay.writers.common import (
    Budget,
    Checkpoint,
    HandOver,
    Listing,
    Unconfirmed,
    outcome,
    results_bucket,
    unconfirmed_outcome,
    write_batch,
)
from testrelay.settings import get_settings
from testrelay.sync.batching import StoredPlan, batches, store_plan
from testrelay.vendors.testsigma import RESULT_SPELLINGS, CasePage, TestsigmaClient, override_result

REFUSALS_KEPT = 100
_RESULT_ID = re.compile(r"result id (\d+)")


def _canonical(result: str) -> str:
    upper = result.strip().upper()
    return RESULT_SPELLINGS.get(upper, upper)


def _wanted(target: TestsigmaOverrideTarget, case_id: int, result: str) -> str | None:
    """The result to set, in Testsigma's enum spelling (a rule `ABORTED: FAILED` sends FAILURE); rules
    and results match whichever spelling either uses (PASSED = SUCCESS, FAILED = FAILURE). A value
    outside the enum is sent as written, so the vendor's refusal is reported id by id."""
    if target.case_ids and case_id not in target.case_ids:
        return None
    rules = {_canonical(key): value for key, value in target.overrides.items()}
    wanted = rules.get(_canonical(result))
    if wanted is None:
        return None
    try:
        wanted = override_result(wanted)
    except ValueError:
        wanted = wanted.strip().upper()
    return wanted if wanted != _canonical(result) else None


def _overrides(
    job: Job, run: RunRef, collected: Mapping[str, Any], target: TestsigmaOverrideTarget
) -> Iterator[dict[str, Any]]:
    """One override per Testsigma case result; iterations share their case's result id, so it goes once."""
    seen: set[int] = set()
    for result in iter_results(collected):
        wanted = _wanted(target, result.case_id, result.result)
        if wanted is None or result.case_result_id is None or result.case_result_id in seen:
            continue
        seen.add(result.case_result_id)
        comment = target.comment.format(route=job.route.name, run_id=run.run_id, result=result.result, override=wanted)
        yield {"testCaseResultId": result.case_result_id, "comment": comment[:500], "result": wanted}


def _refused(errors: list[Any], batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each error message names the id it refuses; one that names none is kept against the whole batch."""
    refused = []
    for error in errors:
        found = _RESULT_ID.search(str(error))
        ids = [int(found.group(1))] if found else [entry["testCaseResultId"] for entry in batch]
        refused += [{"testCaseResultId": result_id, "reason": str(error)[:300]} for result_id in ids]
    return refused


def _whole_batch_refused(message: str, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A 400 overrides nothing: every id of the batch is refused, with its own cause where the vendor names it."""
    causes = {}
    for part in message.split("Given ")[1:]:
        found = _RESULT_ID.search(part)
        if found:
            causes[int(found.group(1))] = f"Given {part.strip()}"[:300]
    return [
        {"testCaseResultId": entry["testCaseResultId"], "reason": causes.get(entry["testCaseResultId"], message[:300])}
        for entry in batch
    ]


class _Sender:
    """Sends one batch's overrides (again, where a read-back found some missing), keeping the refusals.

    Refusals of a call whose answer was lost are unknown; the read-back finds those ids not
    overridden, and the call sent again names them."""

    def __init__(self, testsigma: TestsigmaClient, run_id: int) -> None:
        self.testsigma, self.run_id = testsigma, run_id
        self.refused: list[dict[str, Any]] = []

    def send(self, overrides: list[dict[str, Any]]) -> None:
        try:
            answer = self.testsigma.override_results(self.run_id, overrides)
            self.refused.extend(_refused(list(answer.get("errors") or []), overrides))
        except VendorRejected as exc:
            if exc.status != 400:
                raise
            self.refused.extend(_whole_batch_refused(str(exc), overrides))

    def saved(self, refused: list[dict[str, Any]], count: int) -> Callable[[], dict[str, Any]]:
        """The refusals to save with the batch's confirmation."""
        return lambda: {"refused": (refused + self.refused)[:REFUSALS_KEPT], "refused_count": count + len(self.refused)}


def _override_key(entry: Mapping[str, Any]) -> tuple[Any, str]:
    """An override as the run's case results show it once applied: (case result id, result)."""
    return entry.get("testCaseResultId"), str(entry.get("result"))


def _listing(run_id: int, page_size: int) -> Listing:
    """The run's case results now: an override already showing is confirmed, not sent again. Every
    case result is listed whether overridden or not, so a read-back stops once it saw the batch's."""

    def read(position: CasePage | None) -> tuple[list[dict[str, Any]], CasePage | None]:
        answer, following = services.testsigma().case_result_page(run_id, max(page_size, 100), position or {"page": 0})
        return list((answer or {}).get("testCases") or []), following

    return Listing(read, _override_key, lambda case: case.get("testCaseResultId"))


def write_testsigma_override(
    job: Job, run: RunRef, collected: Mapping[str, Any], target: TestsigmaOverrideTarget, budget: Budget
) -> dict[str, Any]:
    checkpoint = Checkpoint(job, target.name)
    bucket = results_bucket()
    if "plan" in checkpoint.record:
        plan = StoredPlan.model_validate(checkpoint.record["plan"])
    else:
        plan = store_plan(
            bucket,
            f"plans/{job.id}/{target.name}",
            _overrides(job, run, collected, target),
            batch_size=target.batch_size,
            part_size=get_settings().results_part_size,
        )
        checkpoint.save(plan=plan.model_dump(), state="planned", written=0, refused=[], refused_count=0)
    run_id = str(run.run_id)
    if plan.entries == 0:
        return outcome(target, plan, "nothing_to_write", 0, run_id, refused=[], refused_count=0)

    testsigma = services.testsigma()
    listing = _listing(run.run_id, target.batch_size)
    written = checkpoint.written
    refused: list[dict[str, Any]] = list(checkpoint.record.get("refused") or [])
    refused_count = int(checkpoint.record.get("refused_count", 0))
    for batch in batches(plan.read_from(bucket, written), target.batch_size):
        if budget.spent():
            return outcome(target, plan, "in_progress", written, run_id, refused=refused, refused_count=refused_count)
        sender = _Sender(testsigma, run.run_id)
        until = written + len(batch)
        try:
            write_batch(
                checkpoint,
                until,
                batch,
                sender.send,
                listing,
                budget,
                saved=sender.saved(refused, refused_count),
            )
        except Unconfirmed as exc:
            return unconfirmed_outcome(
                target, plan, checkpoint, run_id, exc, refused=refused, refused_count=refused_count
            )
        except HandOver as paused:
            logger.info("write-back handed over during a read-back", target=target.name, reason=str(paused))
            return outcome(target, plan, "in_progress", written, run_id, refused=refused, refused_count=refused_count)
        written = until
        refused_count += len(sender.refused)
        refused = (refused + sender.refused)[:REFUSALS_KEPT]
    status = "written" if not refused_count else ("failed" if refused_count >= plan.entries else "partial")
    checkpoint.save(state=status)
    logger.info("overrides written", job_id=job.id, target=target.name, sent=written, refused=refused_count)
    return outcome(target, plan, status, written - refused_count, run_id, refused=refused, refused_count=refused_count)
