"""Testsigma Test Management: one test run per job holding the matched cases, statuses set in batches."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from testrelay.errors import VendorOutcomeUnknown
from testrelay.models.execution import CaseStatus, RunRef
from testrelay.models.job import Job
from testrelay.models.routes import TestsigmaTmTarget
from testrelay.observability import logger
from testrelay.relay import services
from testrelay.relay.templates import render
from testrelay.relay.writers.common import (
    RECONCILE_ATTEMPTS,
    Budget,
    Checkpoint,
    HandOver,
    Listing,
    Unconfirmed,
    matched_plan,
    outcome,
    results_bucket,
    unconfirmed_outcome,
    write_pipelined,
)
from testrelay.sync.batching import StoredPlan, batches
from testrelay.sync.matching import TargetCase, label_names


def target_case(case: Mapping[str, Any]) -> TargetCase:
    """A Testsigma TM test case as matching sees it (doctor's dry-run reads cases the same way)."""
    return TargetCase(
        id=str(case["id"]),
        key=str(case.get("human_id") or ""),
        title=str(case.get("title") or ""),
        labels=label_names(case.get("labels")),
    )


def _catalog(project_id: str, checkpoint: Checkpoint) -> Iterator[TargetCase]:
    """The project's case list; the cursor parameter detected while paging is kept in the checkpoint,
    so a resumed or retried write-back does not detect it again."""
    tm = services.testsigma_tm()
    tm.cursor_parameter = tm.cursor_parameter or checkpoint.record.get("cursor_parameter")
    for case in tm.list_cases(project_id):
        yield target_case(case)
    if tm.cursor_parameter and checkpoint.record.get("cursor_parameter") != tm.cursor_parameter:
        checkpoint.save(cursor_parameter=tm.cursor_parameter)


def _tm_key(entry: Mapping[str, Any]) -> tuple[str, str, str]:
    """A status update as the run shows it once applied: (test case, status, description); the
    description tells an update apart from a case that started with the same status."""
    return str(entry.get("test_case_id")), str(entry.get("test_run_status_id")), str(entry.get("description") or "")


def _listing(project_id: str, run_id: str) -> Listing:
    """The run's test cases as they show now: re-setting the same status would be harmless, but a
    status already there is confirmed, not sent again. The run has a row for every case, so a
    read-back stops at the page where it saw the batch's last case."""
    return Listing(
        lambda position: services.testsigma_tm().run_cases_page(project_id, run_id, position),
        _tm_key,
        lambda case: str(case.get("test_case_id")),
    )


def _find_run(project_id: str, title: str, marker: str) -> str | None:
    """The run this job created, by its title and the job's marker in its description."""
    for existing in services.testsigma_tm().list_runs(project_id):
        if existing.get("title") == title and marker in str(existing.get("description") or ""):
            return str(existing["id"])
    return None


def _create_run(
    job: Job, run: RunRef, target: TestsigmaTmTarget, plan: StoredPlan, checkpoint: Checkpoint, planned: list[str]
) -> str:
    """Creates the job's run once: a creation whose outcome is unknown (or that a dead worker left
    unrecorded) is looked up in the project's run list before another is created. `planned` are the
    case ids noted while the plan was built (empty when it was built by an earlier invocation: then
    they are read back from the stored plan)."""
    title = render(target.run_title, job, run.run_id)[:255]
    marker = f"written by testrelay job {job.id}."
    if checkpoint.record.get("creating"):
        found = _find_run(target.project_id, title, marker)
        if found:
            return found
    checkpoint.save(creating=True)
    if len(planned) != plan.entries:
        planned = [entry["case"] for entry in plan.read_from(results_bucket(), 0)]
    for attempt in range(1, RECONCILE_ATTEMPTS + 1):
        try:
            created = services.testsigma_tm().create_test_run(
                target.project_id,
                title=title,
                case_ids=planned,
                description=f"Results of {run.described}, {marker}",
                assignee_id=target.assignee_id,
                labels=target.labels,
            )
            return str(created["id"])
        except VendorOutcomeUnknown as exc:
            logger.warning("run creation outcome unknown: looking for it", target=target.name, error=str(exc))
            found = _find_run(target.project_id, title, marker)
            if found:
                return found
            if attempt == RECONCILE_ATTEMPTS:
                raise Unconfirmed(f"run creation unconfirmed after {attempt} attempts: {exc}") from exc
    raise AssertionError("unreachable")


def write_testsigma_tm(
    job: Job, run: RunRef, collected: Mapping[str, Any], target: TestsigmaTmTarget, budget: Budget
) -> dict[str, Any]:
    checkpoint = Checkpoint(job, target.name)
    planned: list[str] = []
    plan = matched_plan(job, collected, target, checkpoint, lambda: _catalog(target.project_id, checkpoint), planned)
    if plan.entries == 0:
        logger.warning("no result matched a target case", job_id=job.id, target=target.name)
        return outcome(target, plan, "nothing_to_write", 0, None)

    tm = services.testsigma_tm()
    bucket = results_bucket()
    tm_run_id = checkpoint.record.get("run_id")
    if not tm_run_id:
        try:
            tm_run_id = _create_run(job, run, target, plan, checkpoint, planned)
        except Unconfirmed as exc:
            return unconfirmed_outcome(target, plan, checkpoint, None, exc)
        checkpoint.save(run_id=tm_run_id, state="run_created", creating=False)
        logger.info("test management run created", job_id=job.id, target=target.name, tm_run_id=tm_run_id)

    listing = _listing(target.project_id, tm_run_id)

    def payload(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                "test_case_id": entry["case"],
                "test_run_status_id": target.status_id(CaseStatus(entry["status"])),
                "description": entry["description"],
                **({"user_id": target.user_id} if target.user_id else {}),
            }
            for entry in batch
        ]

    try:
        done = write_pipelined(
            checkpoint,
            (payload(batch) for batch in batches(plan.read_from(bucket, checkpoint.written), target.batch_size)),
            lambda cases: tm.update_run_cases(target.project_id, tm_run_id, cases),
            listing,
            budget,
        )
    except Unconfirmed as exc:
        return unconfirmed_outcome(target, plan, checkpoint, tm_run_id, exc)
    except HandOver as paused:
        logger.info("write-back handed over during a read-back", target=target.name, reason=str(paused))
        return outcome(target, plan, "in_progress", checkpoint.written, tm_run_id)
    written = checkpoint.written
    if not done:
        return outcome(target, plan, "in_progress", written, tm_run_id)
    checkpoint.save(state="written")
    logger.info("results written", job_id=job.id, target=target.name, written=written, unmatched=plan.unmatched)
    return outcome(target, plan, "written", written, tm_run_id)
