"""A job from the queue becomes one state machine execution named after the job (and its attempt).

Three kinds of message arrive: a job (its first attempt, named after the job, so a redelivered
webhook or message starts nothing twice), a retry request (the job again from its checkpoints, as
attempt n, named `<job id>-a<n>`), and messages that can never be processed (not JSON, an unknown
schema, an invalid job, a retry of a job that cannot be retried). Those are parked: sent to the DLQ
with the reason as a message attribute and reported as processed, so they stop looping. A failure
that may pass (Step Functions or DynamoDB unreachable, throttled) fails the message, which SQS hands
back and after maxReceiveCount moves to the DLQ unchanged: its reason is kept in the ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from testrelay.aws.executions import start_once
from testrelay.aws.ledger import RetryRefused, execution_name
from testrelay.aws.queue import park
from testrelay.models.job import Job, RetryRequest, parse_message
from testrelay.observability import logger, metrics
from testrelay.relay import services
from testrelay.settings import get_settings


class Unprocessable(Exception):
    """A message no later delivery can process: parked in the DLQ with this reason."""


def dispatch(job: Job, attempt: int = 1) -> bool:
    """Start the job's execution; False when it had already started (a redelivered message)."""
    ledger = services.ledger()
    # Recorded before the start, so the execution's own steps always find the job's record.
    if not ledger.record_job(job) and attempt == 1:
        record = ledger.get_job(job.id) or {}
        if int(record.get("attempt", 1)) > 1:
            # The job's original message again (redelivered, or redriven from the DLQ) after it was
            # retried: the retry is the job now, and attempt 1 must not run beside it.
            logger.info("job already retried; its first message starts nothing", job_id=job.id)
            return False
    name = execution_name(job.id, attempt)
    payload: dict[str, Any] = {"job": job.model_dump(mode="json")}
    if attempt > 1:
        payload["attempt"] = attempt
    try:
        started = start_once(get_settings().require("state_machine_arn"), name, payload)
    except Exception as exc:
        # The message fails and comes back (then rests in the DLQ): the ledger says why meanwhile.
        ledger.record_dispatch_failure(job.id, f"{type(exc).__name__}: {exc}")
        raise
    if started:
        ledger.record_dispatched(job.id, attempt)
        metrics.add_metric(name="ExecutionsStarted", unit=MetricUnit.Count, value=1)
    logger.info("job dispatched", job_id=job.id, route=job.route.name, attempt=attempt, started=started)
    return started


def dispatch_retry(request: RetryRequest) -> bool:
    """Run a job again from its checkpoints as attempt `request.attempt` (claimed in the ledger, so two
    retries at once start one attempt)."""
    ledger = services.ledger()
    record = ledger.get_job(request.retry_of)
    if record is None:
        raise Unprocessable(f"retry of job {request.retry_of}: no such job in the ledger")
    if not record.get("job"):
        raise Unprocessable(
            f"retry of job {request.retry_of}: its record holds no copy of the job (recorded before retries "
            "existed); re-run its results with `testrelay resync`"
        )
    job = Job.model_validate_json(str(record["job"]))
    try:
        ledger.claim_attempt(job.id, request.attempt)
    except RetryRefused as exc:
        raise Unprocessable(f"retry of job {job.id} as attempt {request.attempt} refused: {exc}") from exc
    return dispatch(job, request.attempt)


def handle_message(body: str, attributes: Mapping[str, Any] | None = None) -> bool:
    """One queued message; a message that can never be processed is parked in the DLQ and counts as
    processed. Anything else that fails raises, so SQS delivers the message again."""
    try:
        try:
            message = parse_message(body)
        except (ValueError, ValidationError) as exc:
            raise Unprocessable(f"not a job or retry request: {_short(exc)}") from exc
        if isinstance(message, RetryRequest):
            return dispatch_retry(message)
        return dispatch(message)
    except Unprocessable as exc:
        reason = str(exc)
        park(get_settings().require("jobs_dlq_url"), body, attributes, reason)
        metrics.add_metric(name="MessagesParked", unit=MetricUnit.Count, value=1)
        logger.error("message parked in the DLQ", reason=reason)
        return False


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": str(exc)}
        where = ".".join(str(part) for part in first.get("loc", ())) or "body"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return f"{where}: {first.get('msg')}{more}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]
