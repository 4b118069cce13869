"""Testsigma Test Management: one test run per job holding the matched cases, statuses set in batches."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from testrelay.models.execution import CaseStatus, RunRef
from testrelay.models.job import Job
from testrelay.models.routes import TestsigmaTmTarget
from testrelay.observability import logger
from testrelay.relay import services
from testrelay.relay.templates import render
from testrelay.relay.writers.common import Budget, Checkpoint, matched_plan, outcome, results_bucket
from testrelay.sync.batching import batches
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


def write_testsigma_tm(
    job: Job, run: RunRef, collected: Mapping[str, Any], target: TestsigmaTmTarget, budget: Budget
) -> dict[str, Any]:
    checkpoint = Checkpoint(job, target.name)
    plan = matched_plan(job, collected, target, checkpoint, lambda: _catalog(target.project_id, checkpoint))
    if plan.entries == 0:
        logger.warning("no result matched a target case", job_id=job.id, target=target.name)
        return outcome(target, plan, "nothing_to_write", 0, None)

    tm = services.testsigma_tm()
    bucket = results_bucket()
    tm_run_id = checkpoint.record.get("run_id")
    if not tm_run_id:
        created = tm.create_test_run(
            target.project_id,
            title=render(target.run_title, job, run.run_id)[:255],
            case_ids=[entry["case"] for entry in plan.read_from(bucket, 0)],
            description=f"Results of {run.described}, written by testrelay job {job.id}.",
            assignee_id=target.assignee_id,
            labels=target.labels,
        )
        tm_run_id = str(created["id"])
        checkpoint.save(run_id=tm_run_id, state="run_created")
        logger.info("test management run created", job_id=job.id, target=target.name, tm_run_id=tm_run_id)

    written = checkpoint.written
    for batch in batches(plan.read_from(bucket, written), target.batch_size):
        if budget.spent():
            return outcome(target, plan, "in_progress", written, tm_run_id)
        payload = [
            {
                "test_case_id": entry["case"],
                "test_run_status_id": target.status_id(CaseStatus(entry["status"])),
                "description": entry["description"],
                **({"user_id": target.user_id} if target.user_id else {}),
            }
            for entry in batch
        ]
        tm.update_run_cases(target.project_id, tm_run_id, payload)
        written += len(batch)
        checkpoint.save(written=written, state="writing")
    checkpoint.save(state="written")
    logger.info("results written", job_id=job.id, target=target.name, written=written, unmatched=plan.unmatched)
    return outcome(target, plan, "written", written, tm_run_id)
