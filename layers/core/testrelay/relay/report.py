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
from testrelay.relay.shards import missing_note
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
    """The CI status: the run's counts, then each target's outcome (compacted to fit 140 characters).

    `error` means the results could not be written (a target failed or was written in part): the
    description then starts with "results not written", so it reads apart from `failure`, which means
    the tests failed and every result was written."""
    troubled = [str(o["target"]) for o in outcomes if o.get("status") in _TROUBLE]
    unmatched = sum(int(o.get("unmatched", 0)) for o in outcomes)
    description = counts.summary()
    if len(outcomes) == 1:
        [only] = outcomes
        if only.get("status") == "partial":
            description += f"; write-back partial: {only['target']} ({int(only.get('refused_count', 0))} refused)"
        elif unmatched and only.get("status") != "failed":
            description += f"; {unmatched} unmatched"
    elif outcomes:
        detailed = description + "; " + "; ".join(f"{o['target']}: {_target_note(o)}" for o in outcomes)
        if len(detailed) <= DESCRIPTION_LIMIT - len(_not_written(troubled)):
            description = detailed
        else:
            ok = sum(1 for o in outcomes if o.get("status") not in _TROUBLE)
            description += f"; {ok}/{len(outcomes)} targets ok"
            description += f", {unmatched} unmatched" if unmatched else ""
    if troubled:
        description = _not_written(troubled) + description
    if len(description) > DESCRIPTION_LIMIT:
        description = description[: DESCRIPTION_LIMIT - 1] + "…"
    if troubled:
        return "error", description
    if counts.failed or counts.blocked:
        return "failure", description
    return "success", description


def _not_written(troubled: Sequence[str]) -> str:
    return f"results not written: {', '.join(troubled)}; " if troubled else ""


def job_state(outcomes: Sequence[Mapping[str, Any]]) -> str:
    """The job's end state from its targets: `reported` (every target written), `partial` (some
    written, others not or only in part), `failed` (no target written at all)."""
    troubled = [o for o in outcomes if o.get("status") in _TROUBLE]
    if not troubled:
        return "reported"
    if len(troubled) == len(outcomes) and all(o.get("status") == "failed" for o in troubled):
        return "failed"
    return "partial"


def _targets_reason(outcomes: Sequence[Mapping[str, Any]]) -> str:
    parts = []
    for o in outcomes:
        if o.get("status") not in _TROUBLE:
            continue
        if o.get("error"):
            parts.append(f"{o['target']}: {_reason({'Error': o.get('error'), 'Cause': o.get('cause')})}")
        else:
            parts.append(f"{o['target']}: {o.get('status')} ({int(o.get('refused_count', 0))} refused)")
    return ("results not written: " + "; ".join(parts))[:500]


def _with_checkpoint(job: Job, outcome: Mapping[str, Any]) -> Mapping[str, Any]:
    """A target the Map's Catch marked failed may have written part of its results before it failed:
    its checkpoint knows how many and to which vendor run, so the record and the CI status say so."""
    if outcome.get("status") != "failed" or not outcome.get("target"):
        return outcome
    checkpoint = services.ledger().get_target(job.id, str(outcome["target"]))
    written = int(checkpoint.get("written", 0) or 0)
    merged = {**outcome, "written": max(written, int(outcome.get("written", 0) or 0))}
    if checkpoint.get("run_id") and not outcome.get("run_id"):
        merged["run_id"] = checkpoint["run_id"]
    if written:
        merged["status"] = "partial"
    return merged


def report_to_ci(
    job: Job, run: RunRef, collected: Mapping[str, Any], outcomes: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    counts = RunCounts.model_validate(collected.get("counts") or {})
    outcomes = [_with_checkpoint(job, o) for o in outcomes]
    state, description = summarise(counts, outcomes)
    missing = missing_note(job)
    if missing:
        # Shards that never arrived are results not written: the status must not read as a clean run.
        state, description = "error", f"results not written: {missing}; {description}"[:DESCRIPTION_LIMIT]
    posted = post_ci_status(job, state, description, run.url)
    end = job_state(outcomes)
    services.ledger().update_job(
        job.id,
        # A retry that succeeds clears the reason an earlier attempt left.
        error=_targets_reason(outcomes) if end != "reported" else None,
        state=end,
        outcome=state,
        summary=description,
        run_url=run.url,
        ci_run_url=job.event.run_url,
        counts=counts.model_dump(),
        targets=[dict(o) for o in outcomes],
        ci_status_posted=posted,
    )
    logger.info(
        "job finished",
        job_id=job.id,
        run_id=run.run_id,
        outcome=state,
        job_state=end,
        summary=description,
        run_url=run.url,
    )
    return {"state": state, "description": description, "posted": posted, "run_url": run.url, "job_state": end}


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
    # A run past its deadline is `timed_out`; every other failure `failed`. Both can be retried.
    end = "timed_out" if error.get("Error") == "DeadlineExceeded" else "failed"
    services.ledger().update_job(
        job.id, state=end, error=reason, run_url=run_url, ci_run_url=job.event.run_url, ci_status_posted=posted
    )
    logger.error("job failed", job_id=job.id, reason=reason, run_url=run_url)
    return {"state": end, "reason": reason, "posted": posted}
