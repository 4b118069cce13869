"""Writing a run's case results to one test-management target, resumably and exactly once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from testrelay.models.execution import STATUS_SEVERITY, CaseResult, CaseStatus, RunRef
from testrelay.models.job import Job
from testrelay.models.routes import TestsigmaTmTarget
from testrelay.observability import logger
from testrelay.relay import services
from testrelay.relay.templates import render

UNMATCHED_LISTED = 20


@dataclass
class TargetCase:
    status: CaseStatus
    lines: list[str] = field(default_factory=list)


def merge_for_target(
    results: Sequence[CaseResult], target: TestsigmaTmTarget
) -> tuple[dict[str, TargetCase], list[CaseResult]]:
    """Group results by the target's case id; the worst status of a case's results wins."""
    cases: dict[str, TargetCase] = {}
    unmatched: list[CaseResult] = []
    for result in results:
        case_id = target.case_map.get(result.case_id)
        if case_id is None:
            unmatched.append(result)
            continue
        status = target.status_for(result.result)
        line = f"{result.name}: {result.result}" + (f" on {result.machine}" if result.machine else "")
        entry = cases.get(case_id)
        if entry is None:
            cases[case_id] = TargetCase(status, [line])
            continue
        if STATUS_SEVERITY.index(status) < STATUS_SEVERITY.index(entry.status):
            entry.status = status
        entry.lines.append(line)
    return cases, unmatched


def write_to_testsigma_tm(
    job: Job, run: RunRef, results: Sequence[CaseResult], target: TestsigmaTmTarget
) -> dict[str, Any]:
    cases, unmatched = merge_for_target(results, target)
    outcome: dict[str, Any] = {
        "target": target.name,
        "kind": target.kind,
        "unmatched": len(unmatched),
        "unmatched_cases": [f"{r.case_id} {r.name}" for r in unmatched[:UNMATCHED_LISTED]],
    }
    if not cases:
        logger.warning("no result matched a target case", job_id=job.id, target=target.name)
        return {**outcome, "status": "nothing_to_write", "written": 0, "run_id": None}

    ledger = services.ledger()
    tm = services.testsigma_tm()
    checkpoint = ledger.get_target(job.id, target.name)
    tm_run_id = checkpoint.get("run_id")
    # Sorted so a retried write-back cuts exactly the same batches as the attempt it resumes.
    ordered = sorted(cases.items())
    if not tm_run_id:
        created = tm.create_test_run(
            target.project_id,
            title=render(target.run_title, job, run.run_id)[:255],
            case_ids=[case_id for case_id, _ in ordered],
            description=f"Results of Testsigma run {run.run_id} ({run.url}), written by testrelay job {job.id}.",
            assignee_id=target.assignee_id,
            labels=target.labels,
        )
        tm_run_id = str(created["id"])
        ledger.update_target(job.id, target.name, run_id=tm_run_id, batches_done=0, written=0, state="run_created")
        logger.info("test management run created", job_id=job.id, target=target.name, tm_run_id=tm_run_id)

    batches = [ordered[i : i + target.batch_size] for i in range(0, len(ordered), target.batch_size)]
    done = int(checkpoint.get("batches_done", 0))
    written = int(checkpoint.get("written", 0))
    for index in range(done, len(batches)):
        payload = [
            {
                "test_case_id": case_id,
                "test_run_status_id": target.status_ids[case.status],
                "description": "; ".join(case.lines)[:1000],
                **({"user_id": target.user_id} if target.user_id else {}),
            }
            for case_id, case in batches[index]
        ]
        tm.update_run_cases(target.project_id, tm_run_id, payload)
        written += len(payload)
        ledger.update_target(job.id, target.name, batches_done=index + 1, written=written, state="writing")
    ledger.update_target(job.id, target.name, state="written")
    logger.info("results written", job_id=job.id, target=target.name, written=written, unmatched=len(unmatched))
    return {**outcome, "status": "written", "written": written, "run_id": tm_run_id}
