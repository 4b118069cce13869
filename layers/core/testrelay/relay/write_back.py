"""Writing a run's case results to one target, resumably and exactly once.

One invocation works until its time budget is spent, then answers `more: true`; the state machine
invokes it again with the same input and it resumes from the target's checkpoint in the ledger. So a
write-back larger than one Lambda's 900 s (100,000 results at BrowserStack's 300 requests/minute)
spreads over as many invocations as it needs, and a retried or restarted one never writes twice.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from testrelay.models.execution import RunRef
from testrelay.models.job import Job
from testrelay.models.routes import BrowserStackTmTarget, Target, TestsigmaOverrideTarget, TestsigmaTmTarget
from testrelay.observability import emit
from testrelay.relay.writers.browserstack_tm import write_browserstack_tm
from testrelay.relay.writers.common import Budget, Checkpoint, outcome
from testrelay.relay.writers.testsigma_override import write_testsigma_override
from testrelay.relay.writers.testsigma_tm import write_testsigma_tm
from testrelay.sync.batching import StoredPlan


def write_back(job: Job, run: RunRef, collected: Mapping[str, Any], target: Target, budget: Budget) -> dict[str, Any]:
    started = time.monotonic()
    outcome = _write(job, run, collected, target, budget)
    per_route = {"route": job.route.name, "kind": target.kind}
    elapsed_ms = (time.monotonic() - started) * 1000
    emit("WriteBackDuration", elapsed_ms, per_route, unit=MetricUnit.Milliseconds, job_id=job.id)
    if not outcome.get("more"):
        # Counted once, when the target is done (a write-back spans invocations; `written` is cumulative).
        per_target = {**per_route, "target": target.name}
        emit("CasesWritten", int(outcome.get("written") or 0), per_target, job_id=job.id)
        emit("CasesUnmatched", int(outcome.get("unmatched") or 0), per_target, job_id=job.id)
    return outcome


def _write(job: Job, run: RunRef, collected: Mapping[str, Any], target: Target, budget: Budget) -> dict[str, Any]:
    if isinstance(target, TestsigmaTmTarget):
        return write_testsigma_tm(job, run, collected, target, budget)
    if isinstance(target, BrowserStackTmTarget):
        return write_browserstack_tm(job, run, collected, target, budget)
    if isinstance(target, TestsigmaOverrideTarget):
        return write_testsigma_override(job, run, collected, target, budget)
    raise AssertionError(f"no writer for target kind {target.kind!r}")


def failed_outcome(job: Job, target: Target, error: Mapping[str, Any]) -> dict[str, Any]:
    """The outcome of a target whose write-back failed past its retries (the Map's Catch, `error` its
    {Error, Cause}): what its checkpoint confirmed written and to which vendor run, with the error."""
    checkpoint = Checkpoint(job, target.name)
    plan = StoredPlan.model_validate(checkpoint.record["plan"]) if "plan" in checkpoint.record else None
    return outcome(
        target,
        plan,
        "failed",
        checkpoint.written,
        checkpoint.record.get("run_id"),
        error=error.get("Error"),
        cause=error.get("Cause"),
    )
