"""Starting (or adopting) the Testsigma run and following it until it finishes."""

from __future__ import annotations

import time
from typing import Any

from testrelay.models.execution import ExecutionStatus, RunRef
from testrelay.models.job import Job
from testrelay.observability import logger
from testrelay.relay import services
from testrelay.relay.templates import render


def trigger_plan(job: Job) -> RunRef:
    """Trigger the route's test plan once per job (adopt the existing run of a result-sync job, the CI
    run of a JUnit report); a repeat returns the run recorded in the ledger."""
    ledger = services.ledger()
    recorded = ledger.recorded_run(job.id)
    if recorded:
        logger.info("run already recorded for job", job_id=job.id, run_id=recorded["run_id"])
        return RunRef.model_validate(recorded)

    if job.kind == "junit":
        # The results are in the report: the "run" is the CI run that produced it; nothing to trigger or poll.
        report = RunRef(run_id=0, url=job.event.run_url or "", triggered_at=time.time(), source="junit")
        return RunRef.model_validate(ledger.claim_run(job.id, report.model_dump()))

    plan = job.route.testsigma
    if job.testsigma_run_id is not None:
        run_id = job.testsigma_run_id
    else:
        answer = services.testsigma().trigger(
            plan.test_plan_id,
            environment_id=plan.environment_id,
            build_number=render(plan.build_number, job),
            runtime_data=plan.runtime_data or None,
        )
        run_id = int(answer["id"])
    run = RunRef(
        run_id=run_id,
        url=services.testsigma_run_url(run_id),
        triggered_at=time.time(),
        plan_id=plan.test_plan_id,
    )
    claimed = RunRef.model_validate(ledger.claim_run(job.id, run.model_dump()))
    logger.info("testsigma run started", job_id=job.id, run_id=claimed.run_id, plan_id=plan.test_plan_id)
    return claimed


def poll_status(job: Job, run: RunRef, previous: dict[str, Any] | None) -> dict[str, Any]:
    """One look at the run; says whether it finished, whether the deadline passed, and how long to wait."""
    polling = job.route.polling
    attempt = 0 if previous is None else int(previous.get("attempt", -1)) + 1
    status: ExecutionStatus = services.testsigma().status(run.run_id)
    deadline_passed = not status.finished and time.time() > run.triggered_at + polling.deadline_seconds
    services.ledger().update_job(
        job.id,
        state="completed_run" if status.finished else "running",
        run_status=status.status,
        run_result=status.result,
    )
    logger.info(
        "testsigma run polled",
        job_id=job.id,
        run_id=run.run_id,
        status=status.status,
        result=status.result,
        attempt=attempt,
    )
    return {
        "attempt": attempt,
        "status": status.status,
        "result": status.result,
        "finished": status.finished,
        "deadline_passed": deadline_passed,
        "next_wait_seconds": polling.wait_after(attempt),
    }
