"""A job's end, announced on the stack's bus: `Test Run Finished` (ReportToCi), `Test Run Failed` or
`Test Run Timed Out` (the failure path). README "Events out" documents the detail.

Once per job end: the announcement is recorded in the ledger (per attempt) after EventBridge accepts
it, and a repeated step (a Step Functions retry of ReportToCi or RecordFailure) finds the record and
puts nothing. A step that dies between PutEvents and the record puts the event again with the same
`event_id` (`<job id>#a<attempt>`), so consumers that must never see two can dedupe on it. A bus that
refuses the event does not change the job's end: the reason is kept in the job's record
(`end_event_error`) and counted (`EndEventsNotPut`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from testrelay.aws.bus import PutEventsFailed, put_event
from testrelay.aws.end_event_marks import announced, mark_announced
from testrelay.models.bus_events import EVENT_SOURCE, FAILED, FINISHED, TIMED_OUT
from testrelay.models.job import Job
from testrelay.observability import logger, metrics
from testrelay.relay import services
from testrelay.settings import get_settings

SCHEMA_VERSION = 1
_TARGET_FIELDS = ("target", "kind", "status", "written", "to_write", "unmatched", "run_id", "run_url", "error")


def detail_type_for(state: str, from_failure_path: bool) -> str:
    if state == "timed_out":
        return TIMED_OUT
    return FAILED if from_failure_path else FINISHED


def announce_end(
    job: Job,
    state: str,
    *,
    outcome: str,
    run: Mapping[str, Any] | None,
    counts: Mapping[str, Any] | None = None,
    targets: Sequence[Mapping[str, Any]] = (),
    reason: str | None = None,
    from_failure_path: bool = False,
) -> str | None:
    """Put the job's end event unless this attempt's end was announced already; the detail-type put,
    or None (no bus configured, already announced, or the bus refused it)."""
    bus = get_settings().event_bus_name
    if not bus:
        return None
    ledger = services.ledger()
    attempt = int((ledger.get_job(job.id) or {}).get("attempt", 1) or 1)
    if announced(ledger, job.id, attempt):
        logger.info("job end already announced", job_id=job.id, attempt=attempt)
        return None
    detail_type = detail_type_for(state, from_failure_path)
    detail = end_detail(job, attempt, state, outcome, run, counts, targets, reason)
    try:
        event_id = put_event(bus, EVENT_SOURCE, detail_type, detail)
    except PutEventsFailed as exc:
        logger.error("job end not announced", job_id=job.id, error=str(exc))
        metrics.add_metric(name="EndEventsNotPut", unit=MetricUnit.Count, value=1)
        ledger.update_job(job.id, end_event_error=str(exc)[:500])
        return None
    mark_announced(ledger, job.id, attempt, detail_type, event_id)
    logger.info("job end announced", job_id=job.id, detail_type=detail_type, eventbridge_id=event_id)
    return detail_type


def end_detail(
    job: Job,
    attempt: int,
    state: str,
    outcome: str,
    run: Mapping[str, Any] | None,
    counts: Mapping[str, Any] | None,
    targets: Sequence[Mapping[str, Any]],
    reason: str | None,
) -> dict[str, Any]:
    origin = job.event
    # A JUnit job's "run" is the CI run that produced the report (run id 0): there is no Testsigma run.
    testsigma_run = run if run and run.get("source") != "junit" else None
    run_id = testsigma_run.get("run_id") if testsigma_run else None
    return {
        "schema_version": SCHEMA_VERSION,
        "event_id": f"{job.id}#a{attempt}",
        "job_id": job.id,
        "attempt": attempt,
        "kind": job.kind,
        "route": job.route.name,
        "state": state,
        "outcome": outcome,
        "reason": reason,
        "origin": {
            "provider": origin.provider,
            "event": origin.event,
            "delivery_key": origin.delivery_key,
            "repository": origin.repository,
            "branch": origin.branch,
            "tag": origin.tag,
            "pull_request": origin.pull_request,
            "commit_sha": origin.commit_sha,
            "pipeline_name": origin.pipeline_name,
            "run_url": origin.run_url,
        },
        "testsigma": {
            "run_id": run_id if isinstance(run_id, int) and run_id > 0 else None,
            "run_url": str(testsigma_run["url"]) if testsigma_run and testsigma_run.get("url") else None,
        },
        "counts": dict(counts) if counts is not None else None,
        "targets": [{name: target.get(name) for name in _TARGET_FIELDS} for target in targets],
    }
