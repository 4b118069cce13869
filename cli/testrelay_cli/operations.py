"""What the operator commands do, against any stack: list and show jobs, re-sync a run,
redrive the DLQ, fire a schedule."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from testrelay.aws.ledger import RETRYABLE_STATES, RUNNING_STATES, Ledger, RetryRefused, execution_name, refusal
from testrelay.aws.queue import REASON_ATTRIBUTE
from testrelay.models.ci_event import CiEvent
from testrelay.models.job import Job, RetryRequest
from testrelay.routing import load_routes
from testrelay_cli.cli_errors import CliError
from testrelay_cli.stack_target import StackTarget

# Target statuses that mean results were not written (the CI status says so too).
TROUBLE = ("failed", "partial")
# Job states that mean it did not write every result (each can be retried).
FAILED_STATES = RETRYABLE_STATES

_deserialize = TypeDeserializer().deserialize


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        if hasattr(value, "as_integer_ratio") and not isinstance(value, (int, float)):
            return int(value) if value == int(value) else float(value)
        return value

    result: dict[str, Any] = convert({key: _deserialize(value) for key, value in item.items()})
    return result


def list_jobs(target: StackTarget, limit: int = 20) -> list[dict[str, Any]]:
    """Newest first. A scan: fine for an operator's look at a ledger that expires items after 90 days."""
    dynamodb = target.client("dynamodb")
    jobs: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=target.output("LedgerTableName"),
        FilterExpression="sk = :job",
        ExpressionAttributeValues={":job": {"S": "JOB"}},
    ):
        jobs.extend(_plain(item) for item in page["Items"])
    jobs.sort(key=lambda job: (job.get("created_at", 0), job["job_id"]), reverse=True)
    return jobs[:limit]


def show_job(target: StackTarget, job_id: str) -> dict[str, Any] | None:
    answer = target.client("dynamodb").query(
        TableName=target.output("LedgerTableName"),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"JOB#{job_id}"}},
    )
    items = [_plain(item) for item in answer["Items"]]
    job = next((item for item in items if item["sk"] == "JOB"), None)
    if job is None:
        return None
    job["target_checkpoints"] = {i["sk"].split("#", 1)[1]: i for i in items if i["sk"].startswith("TARGET#")}
    return job


def target_reason(outcome: dict[str, Any]) -> str:
    """Why a target was not (fully) written, from its outcome in the job's record; "" when it was."""
    if outcome.get("status") not in TROUBLE:
        return ""
    if outcome.get("error"):
        # A writer that raised: the Map's Catch keeps the Lambda's {errorType, errorMessage} as `cause`.
        try:
            cause = json.loads(str(outcome.get("cause") or "{}"))
        except json.JSONDecodeError:
            cause = {"errorMessage": outcome.get("cause")}
        message = cause.get("errorMessage") if isinstance(cause, dict) else None
        return f"{outcome['error']}: {message}" if message else str(outcome["error"])
    refused = outcome.get("refused") or []
    if refused:
        first = refused[0].get("reason", "") if isinstance(refused[0], dict) else str(refused[0])
        return f"{outcome.get('refused_count', len(refused))} result(s) refused, e.g. {first}"
    return str(outcome.get("status"))


def job_failed(job: dict[str, Any]) -> bool:
    """The job failed, timed out, could not be dispatched, or wrote some target only in part or not at all."""
    if job.get("state") in FAILED_STATES:
        return True
    return job.get("state") == "reported" and any(o.get("status") in TROUBLE for o in job.get("targets") or [])


def job_reason(job: dict[str, Any]) -> str:
    """One line on what went wrong with a job: its error, else its troubled targets; "" when nothing did."""
    if job.get("state") == "dispatch_failed" and job.get("dispatch_error"):
        return f"could not start: {job['dispatch_error']}"
    if job.get("error"):
        return str(job["error"])
    troubled = [f"{o.get('target')}: {target_reason(o)}" for o in job.get("targets") or [] if target_reason(o)]
    return "; ".join(troubled)


def resync_job(routes_file: str, route_name: str, run_id: int, again: bool = False) -> Job:
    """A result-sync job for an existing Testsigma run. The same run re-syncs once unless `again`."""
    config = load_routes(routes_file)
    try:
        route = config.route(route_name).action()
    except KeyError:
        names = ", ".join(r.name for r in config.routes) or "none"
        raise CliError(f"no route {route_name!r} in {routes_file} (routes: {names}); check --route") from None
    key = f"resync:{run_id}" + (f":{time.time_ns()}" if again else "")
    event = CiEvent(
        provider="cli",
        event="resync",
        delivery_key=key,
        repository=f"testsigma/run-{run_id}",
        pipeline_id=str(run_id),
        testsigma_run_id=run_id,
    )
    return Job.for_event(event, route)


def enqueue(target: StackTarget, job: Job) -> None:
    target.client("sqs").send_message(QueueUrl=target.output("JobsQueueUrl"), MessageBody=job.model_dump_json())


@dataclass
class Retry:
    job_id: str
    attempt: int
    execution: str
    started: bool
    note: str


def retry_job(target: StackTarget, job_id: str) -> Retry:
    """Run a failed, partial or timed-out job again from its checkpoints as its next attempt: the
    attempt is claimed in the ledger (conditional write: two retries at once claim one), then a retry
    request goes on the jobs queue, which the dispatcher starts as `<job id>-a<attempt>`."""
    record = show_job(target, job_id)
    if record is None:
        raise CliError(f"no job {job_id!r} in {target.name}: `testrelay jobs` lists the recent ones")
    ledger = Ledger(target.output("LedgerTableName"), target.resource("dynamodb"))
    if record.get("state") == "retry_queued":
        # Claimed by an earlier (or a concurrent) retry; its request may be lost: sending it again is harmless.
        attempt = int(record.get("attempt", 2))
        note = f"job {job_id} was already queued for retry as attempt {attempt}: not started again"
        claimed = False
    else:
        refused = refusal(job_id, record)
        if refused and record.get("state") in RUNNING_STATES and _ended_unrecorded(target, ledger, record):
            refused = None
        if refused:
            raise CliError(f"{refused}; `testrelay job {job_id}` shows it")
        attempt = int(record.get("attempt", 1)) + 1
        try:
            claimed = ledger.claim_attempt(job_id, attempt) == "claimed"
        except RetryRefused as exc:
            raise CliError(f"{exc}; `testrelay job {job_id}` shows it") from None
        note = (
            f"queued job {job_id} for retry as attempt {attempt}"
            if claimed
            else f"job {job_id} is already being retried as attempt {attempt}: not started again"
        )
    request = RetryRequest(retry_of=job_id, attempt=attempt)
    target.client("sqs").send_message(
        QueueUrl=target.output("JobsQueueUrl"),
        MessageBody=request.model_dump_json(),
        MessageAttributes={
            "job_id": {"DataType": "String", "StringValue": job_id},
            "kind": {"DataType": "String", "StringValue": "retry"},
        },
    )
    return Retry(job_id, attempt, execution_name(job_id, attempt), claimed, note)


def _ended_unrecorded(target: StackTarget, ledger: Ledger, record: dict[str, Any]) -> bool:
    """True for a job the ledger still shows running whose execution ended without recording it
    (stopped by hand, or past the execution's own time-out): recorded as failed now, so it can be retried."""
    job_id, attempt = str(record["job_id"]), int(record.get("attempt", 1))
    name = execution_name(job_id, attempt)
    sfn = target.client("stepfunctions")
    try:
        status = str(sfn.describe_execution(executionArn=execution_arn(target, name))["status"])
    except sfn.exceptions.ExecutionDoesNotExist:
        return False  # not started yet: its message is still on its way
    if status in ("RUNNING", "SUCCEEDED", "PENDING_REDRIVE"):
        return False
    ledger.update_job(job_id, state="failed", error=f"execution {name} ended {status} without recording why")
    record["state"] = "failed"
    return True


@dataclass
class Moved:
    message_id: str
    job_id: str
    route: str
    receive_count: str
    reason: str = ""


def _dlq_messages(target: StackTarget, peek: bool) -> Iterator[dict[str, Any]]:
    """Each DLQ message once. Peeking leaves them visible (timeout 0), so SQS may hand back ones already
    seen: it stops after a few receives bring nothing new."""
    sqs = target.client("sqs")
    seen: set[str] = set()
    misses = 0
    while misses < 3:
        answer = sqs.receive_message(
            QueueUrl=target.output("JobsDlqUrl"),
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=0 if peek else 30,
        )
        messages = answer.get("Messages") or []
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not messages:
            return
        misses = 0 if fresh else misses + 1
        seen.update(m["MessageId"] for m in fresh)
        yield from fresh


def redrive(target: StackTarget, dry_run: bool = False, emit: Callable[[Moved], None] = lambda _: None) -> list[Moved]:
    """Move every DLQ message back to the jobs queue (or only list them with dry_run), each with the reason
    it rests there: the dispatcher's `failure_reason` attribute on a message it parked, else the reason
    the ledger kept for its job (a start that kept failing until SQS moved the message).

    SQS has no way to look at a message without receiving it: a dry run receives with a visibility
    time-out of 0, which leaves the messages where they are but adds one to their receive count in
    the DLQ. That count is only shown (the DLQ has no redrive policy of its own), and a redriven message
    goes back as a new message whose count starts at 0."""
    sqs = target.client("sqs")
    moved: list[Moved] = []
    for message in _dlq_messages(target, peek=dry_run):
        job_id, route = _describe_body(message["Body"])
        attributes = message.get("MessageAttributes") or {}
        reason = str((attributes.get(REASON_ATTRIBUTE) or {}).get("StringValue") or "")
        if not reason and not job_id.startswith("("):
            record = show_job(target, job_id) or {}
            reason = str(record.get("dispatch_error") or "")
        count = message["Attributes"].get("ApproximateReceiveCount", "?")
        entry = Moved(message["MessageId"], job_id, route, count, reason or "no reason recorded")
        emit(entry)
        moved.append(entry)
        if dry_run:
            continue
        kept = {name: value for name, value in attributes.items() if name != REASON_ATTRIBUTE}
        sqs.send_message(
            QueueUrl=target.output("JobsQueueUrl"),
            MessageBody=message["Body"],
            **({"MessageAttributes": kept} if kept else {}),
        )
        sqs.delete_message(QueueUrl=target.output("JobsDlqUrl"), ReceiptHandle=message["ReceiptHandle"])
    return moved


def _describe_body(body: str) -> tuple[str, str]:
    """The job id and route a message names (a retry request: the job it retries)."""
    try:
        decoded = json.loads(body)
    except json.JSONDecodeError:
        return "(not a job)", "?"
    if not isinstance(decoded, dict):
        return "(not a job)", "?"
    if "retry_of" in decoded:
        return str(decoded["retry_of"]), f"retry, attempt {decoded.get('attempt', '?')}"
    route = decoded.get("route")
    return str(decoded.get("id", "(not a job)")), str(route.get("name", "?") if isinstance(route, dict) else "?")


def fire_schedule(target: StackTarget, name: str, scheduled_time: str | None) -> dict[str, Any]:
    payload = {"schedule": name, **({"scheduled_time": scheduled_time} if scheduled_time else {})}
    answer = target.client("lambda").invoke(
        FunctionName=target.output("ScheduleFunctionName"), Payload=json.dumps(payload).encode()
    )
    result: dict[str, Any] = json.loads(answer["Payload"].read() or b"{}")
    if answer.get("FunctionError"):
        raise CliError(f"schedule {name!r} did not fire: {result.get('errorMessage', result)}")
    return result


def execution_arn(target: StackTarget, job_id: str) -> str:
    """Executions are named after their job (the dispatcher's exactly-once start); a retry's after its
    job and attempt (`<job id>-a<n>`, see `execution_name`)."""
    return target.output("StateMachineArn").replace(":stateMachine:", ":execution:") + f":{job_id}"


def started_before(target: StackTarget, job_id: str, before: float) -> bool:
    """True when the job's execution started before `before`: an earlier firing ran it, so this one
    starts nothing (the dispatcher starts a job once)."""
    sfn = target.client("stepfunctions")
    try:
        described = sfn.describe_execution(executionArn=execution_arn(target, job_id))
    except sfn.exceptions.ExecutionDoesNotExist:
        return False
    started: datetime = described["startDate"]
    return started.timestamp() < before
