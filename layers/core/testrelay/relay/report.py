"""The end of a job: one summary, to the CI commit and the ledger; and the failure path's record."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from testrelay.errors import VendorError
from testrelay.models.execution import RunCounts, RunRef
from testrelay.models.job import Job
from testrelay.observability import logger
from testrelay.relay import services
from testrelay.relay.ci_report import post_ci_status
from testrelay.vendors.github import CommitState

# GitHub refuses longer commit status descriptions; the ledger keeps every target's full outcome.
DESCRIPTION_LIMIT = 140
_TROUBLE = ("failed", "partial")


def _target_note(outcome: Mapping[str, Any]) -> str:
    status = str(outcome.get("status") or "")
    unmatched = int(outcome.get("unmatched", 0))
    if status == "failed":
        note = "failed"
    elif status == "partial":
        note = f"partial ({int(outcome.get('refused_count', 0))} refused)"
    elif status == "nothing_to_write":
        note = "nothing matched"
    else:
        note = "ok"
    return f"{note}, {unmatched} unmatched" if unmatched and status != "failed" else note


def summarise(counts: RunCounts, outcomes: Sequence[Mapping[str, Any]]) -> tuple[CommitState, str]:
    """The CI status: the run's counts, then each target's outcome (compacted to fit 140 characters)."""
    troubled = [str(o["target"]) for o in outcomes if o.get("status") in _TROUBLE]
    unmatched = sum(int(o.get("unmatched", 0)) for o in outcomes)
    description = counts.summary()
    if len(outcomes) == 1:
        [only] = outcomes
        if only.get("status") == "partial":
            description += f"; write-back partial: {only['target']} ({int(only.get('refused_count', 0))} refused)"
        elif unmatched:
            description += f"; {unmatched} unmatched"
        if only.get("status") == "failed":
            description += f"; write-back failed: {only['target']}"
    elif outcomes:
        detailed = description + "; " + "; ".join(f"{o['target']}: {_target_note(o)}" for o in outcomes)
        if len(detailed) <= DESCRIPTION_LIMIT:
            description = detailed
        else:
            ok = sum(1 for o in outcomes if o.get("status") not in _TROUBLE)
            description += f"; {ok}/{len(outcomes)} targets ok"
            description += f", {unmatched} unmatched" if unmatched else ""
            description += f"; failed: {', '.join(troubled)}" if troubled else ""
    if len(description) > DESCRIPTION_LIMIT:
        description = description[: DESCRIPTION_LIMIT - 1] + "…"
    if counts.failed or counts.blocked:
        return "failure", description
    if troubled:
        return "error", description
    return "success", description


def report_to_ci(
    job: Job, run: RunRef, collected: Mapping[str, Any], outcomes: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    counts = RunCounts.model_validate(collected.get("counts") or {})
    state, description = summarise(counts, outcomes)
    posted = post_ci_status(job, state, description, run.url)
    services.ledger().update_job(
        job.id,
        state="reported",
        outcome=state,
        summary=description,
        run_url=run.url,
        ci_run_url=job.event.run_url,
        counts=counts.model_dump(),
        targets=[dict(o) for o in outcomes],
        ci_status_posted=posted,
    )
    logger.info("job finished", job_id=job.id, run_id=run.run_id, outcome=state, summary=description, run_url=run.url)
    return {"state": state, "description": description, "posted": posted, "run_url": run.url}


def _reason(error: Mapping[str, Any]) -> str:
    """Short reason from a Catch's {Error, Cause}; a Lambda's Cause is JSON with errorMessage."""
    name = str(error.get("Error") or "Error")
    cause = error.get("Cause") or ""
    try:
        decoded = json.loads(cause) if isinstance(cause, str) and cause.startswith("{") else None
    except json.JSONDecodeError:
        decoded = None
    message = decoded.get("errorMessage", "") if isinstance(decoded, dict) else str(cause)
    return f"{name}: {message}"[:500] if message else name


def record_failure(job: Job, run: Mapping[str, Any] | None, error: Mapping[str, Any]) -> dict[str, Any]:
    reason = _reason(error)
    run_url = str(run["url"]) if run and run.get("url") else None
    posted = False
    try:
        posted = post_ci_status(job, "error", f"testrelay: {reason}", run_url)
    except VendorError as exc:
        logger.error("failure could not be reported to the CI", job_id=job.id, error=str(exc))
    services.ledger().update_job(
        job.id, state="failed", error=reason, run_url=run_url, ci_run_url=job.event.run_url, ci_status_posted=posted
    )
    logger.error("job failed", job_id=job.id, reason=reason, run_url=run_url)
    return {"state": "failed", "reason": reason, "posted": posted}
