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
from botocore.exceptions import ClientError

from testrelay.aws.ledger import (
    DAY_KEY,
    RETENTION_SECONDS,
    RETRYABLE_STATES,
    RUNNING_STATES,
    TIME_INDEX,
    Ledger,
    RetryRefused,
    execution_name,
    job_day,
    refusal,
)
from testrelay.aws.queue import REASON_ATTRIBUTE
from testrelay.models.ci_event import CiEvent
from testrelay.models.job import Job, RetryRequest
from testrelay.routing import load_routes
from testrelay_cli.cli_errors import FAILED, CliError
from testrelay_cli.progress import history_pages
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


def list_jobs(
    target: StackTarget,
    limit: int = 20,
    since: float | None = None,
    before: str | None = None,
    note: Callable[[str], None] = lambda _: None,
) -> list[dict[str, Any]]:
    """The newest `limit` jobs (created at or after `since`, older than the job `before`), newest first:
    a query of the ledger's time index per UTC day, back to `since` or the ledger's retention; the jobs
    found are then read from the table. A stack deployed before the index is scanned, and `note` says so."""
    dynamodb = target.client("dynamodb")
    table = target.output("LedgerTableName")
    now = time.time()
    horizon = max(since or 0.0, now - RETENTION_SECONDS - 86400)
    newest, start = now, None
    if before:
        record = show_job(target, before)
        if record is None or "created_at" not in record:
            raise CliError(f"no job {before!r} in {target.name}: --before takes a job id `testrelay jobs` listed")
        newest = float(record["created_at"])
        start = {
            "pk": {"S": f"JOB#{before}"},
            "sk": {"S": "JOB"},
            DAY_KEY: {"S": job_day(newest)},
            "created_at": {"N": str(record["created_at"])},
        }
    try:
        keys = _indexed_jobs(dynamodb, table, limit, newest, horizon, start)
    except ClientError as exc:
        if not _no_index(exc):
            raise
        note(f"{target.name}'s ledger has no {TIME_INDEX} index yet (deploy the current template): scanned the table")
        return scan_jobs(dynamodb, table, limit, since, before)
    return _read_jobs(dynamodb, table, keys)


def _indexed_jobs(
    dynamodb: Any, table: str, limit: int, newest: float, horizon: float, start: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The table keys of the newest jobs, a day at a time from `newest`'s day back to `horizon`'s."""
    keys: list[dict[str, Any]] = []
    day, last = newest, job_day(horizon)
    while len(keys) < limit and job_day(day) >= last:
        request: dict[str, Any] = {
            "TableName": table,
            "IndexName": TIME_INDEX,
            "KeyConditionExpression": "#day = :day AND created_at >= :since",
            "ExpressionAttributeNames": {"#day": DAY_KEY},
            "ExpressionAttributeValues": {":day": {"S": job_day(day)}, ":since": {"N": str(int(horizon))}},
            "ScanIndexForward": False,
        }
        while len(keys) < limit:
            page = dynamodb.query(**request, Limit=limit - len(keys), **({"ExclusiveStartKey": start} if start else {}))
            keys += [{"pk": item["pk"], "sk": item["sk"]} for item in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        start = None
        day -= 86400
    return keys


def _read_jobs(dynamodb: Any, table: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items of `keys`, in their order (BatchGetItem answers in any order, 100 keys a call)."""
    found: dict[str, dict[str, Any]] = {}
    for first in range(0, len(keys), 100):
        wanted: dict[str, Any] = {table: {"Keys": keys[first : first + 100], "ConsistentRead": True}}
        while wanted:
            answer = dynamodb.batch_get_item(RequestItems=wanted)
            for item in answer.get("Responses", {}).get(table, []):
                found[item["pk"]["S"]] = _plain(item)
            wanted = answer.get("UnprocessedKeys") or {}
            if wanted:
                time.sleep(0.1)  # throttled: DynamoDB hands back what it did not read
    return [found[key["pk"]["S"]] for key in keys if key["pk"]["S"] in found]


def _no_index(exc: ClientError) -> bool:
    """AWS answers a query of a missing index with ValidationException "The table does not have the
    specified index"; moto with ResourceNotFoundException "Invalid index"."""
    error = exc.response.get("Error", {})
    code, message = error.get("Code"), str(error.get("Message", "")).lower()
    return code in ("ValidationException", "ResourceNotFoundException") and "index" in message


def scan_jobs(dynamodb: Any, table: str, limit: int, since: float | None, before: str | None) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=table, FilterExpression="sk = :job", ExpressionAttributeValues={":job": {"S": "JOB"}}
    ):
        jobs.extend(_plain(item) for item in page["Items"])
    jobs.sort(key=lambda job: (job.get("created_at", 0), job["job_id"]), reverse=True)
    if before:
        position = next((i for i, job in enumerate(jobs) if job["job_id"] == before), None)
        if position is None:
            raise CliError(f"no job {before!r} in the ledger: --before takes a job id `testrelay jobs` listed")
        jobs = jobs[position + 1 :]
    return [job for job in jobs if job.get("created_at", 0) >= (since or 0)][:limit]


def reindex_jobs(target: StackTarget) -> int:
    """Give the job items recorded before the time index their day key, so `jobs` finds them: a scan of
    the items without one, each set only while it still has none (safe to repeat, or to run beside the
    relay). The number of items it gave a key."""
    dynamodb = target.client("dynamodb")
    table = target.output("LedgerTableName")
    indexed = 0
    for page in dynamodb.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="sk = :job AND attribute_not_exists(#day) AND attribute_exists(created_at)",
        ProjectionExpression="pk, sk, created_at",
        ExpressionAttributeNames={"#day": DAY_KEY},
        ExpressionAttributeValues={":job": {"S": "JOB"}},
    ):
        for item in page["Items"]:
            try:
                dynamodb.update_item(
                    TableName=table,
                    Key={"pk": item["pk"], "sk": item["sk"]},
                    UpdateExpression="SET #day = :day",
                    ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#day)",
                    ExpressionAttributeNames={"#day": DAY_KEY},
                    ExpressionAttributeValues={":day": {"S": job_day(float(item["created_at"]["N"]))}},
                )
                indexed += 1
            except dynamodb.exceptions.ConditionalCheckFailedException:
                continue  # given its key meanwhile (a concurrent reindex)
    return indexed


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


# How the headline of `testrelay job` says each state that did not write every result.
_FAILED_PHRASES = {
    "failed": "failed",
    "timed_out": "timed out",
    "partial": "wrote only part of its results",
    "dispatch_failed": "could not be started",
}
# The states the failure path enters; the step entered just before one of them is the one that failed.
_FAILURE_STEPS = ("RecordFailure", "RecordTimeout")
# The Fail state of a job none of whose targets could be written.
_NOTHING_WRITTEN = "ResultsNotWritten"


def failed_step(target: StackTarget, job: dict[str, Any]) -> str | None:
    """The step of the job's last attempt that failed, from its execution's history; None when it never
    ran, its history is gone, or the caller may not read it."""
    name = execution_name(str(job["job_id"]), int(job.get("attempt", 1)))
    sfn = target.client("stepfunctions")
    try:
        events = [event for page in history_pages(sfn, execution_arn(target, name)) for event in page]
    except ClientError:
        return None  # no such execution (never started, expired), or no states:GetExecutionHistory
    failing = False
    # Newest first, whatever order the pages came in (moto's ignores reverseOrder).
    for event in sorted(events, key=lambda e: int(e["id"]), reverse=True):
        entered = (event.get("stateEnteredEventDetails") or {}).get("name")
        if entered == _NOTHING_WRITTEN:
            return "WriteBack"
        if entered in _FAILURE_STEPS:
            failing = True
        elif entered and failing:
            return str(entered)
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def failure(job: dict[str, Any], step: str | None) -> dict[str, Any]:
    """Why the job did not write every result, and what to do, as one line (`summary`) and its parts."""
    job_id, state = str(job["job_id"]), str(job.get("state"))
    phrase = _FAILED_PHRASES.get(state, "did not write every result")
    reason = _one_line(job_reason(job)).removeprefix("could not start: ") or "no reason recorded"
    refused = refusal(job_id, job)
    if refused:
        then = _one_line(refused)
    else:
        then = f"fix the cause, then `testrelay retry {job_id}` (resumes from its checkpoints)"
        if state == "dispatch_failed":
            then += "; its message may rest in the DLQ (`testrelay redrive --dry-run`)"
    summary = _one_line(f"{job_id} {phrase}" + (f" at {step}" if step else "") + f": {reason}; {then}")
    return {"summary": summary, "state": state, "step": step, "reason": reason, "next": then}


def readable_record(job: dict[str, Any]) -> dict[str, Any]:
    """The job's record with what the ledger keeps as JSON text (the job itself, a target's Lambda error)
    decoded, so `job --json` shows structure rather than escaped strings."""

    def decoded(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("{"):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value

    targets = [{**o, "cause": decoded(o["cause"])} if "cause" in o else o for o in job.get("targets") or []]
    return {**job, "job": decoded(job.get("job")), **({"targets": targets} if "targets" in job else {})}


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


@dataclass
class Redrive:
    """A redrive of the DLQ: the messages seen in it (each with why it rests there), and how they moved."""

    messages: list[Moved]
    in_dlq: int
    method: str = ""  # MOVE_TASK or RESEND; "" for a dry run
    moved: int = 0
    task: dict[str, Any] | None = None


MOVE_TASK = "message move task"
RESEND = "receive and re-send"
# Receives without a new message before a peek gives up: a visibility time-out of 0 lets SQS hand the same
# messages back, so a DLQ of more than a few receives' worth is shown in part (its count says how many).
_PEEK_MISSES = 3
_PEEK_LIMIT = 100


def _peek(target: StackTarget) -> Iterator[dict[str, Any]]:
    """DLQ messages, each once, left where they are (visibility time-out 0): nothing is consumed, but each
    receive adds one to a message's receive count in the DLQ (shown only: the DLQ has no redrive policy,
    and a moved message arrives as a new one)."""
    sqs = target.client("sqs")
    seen: set[str] = set()
    misses = 0
    while misses < _PEEK_MISSES and len(seen) < _PEEK_LIMIT:
        answer = sqs.receive_message(
            QueueUrl=target.output("JobsDlqUrl"),
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=0,
        )
        messages = answer.get("Messages") or []
        if not messages:
            return
        fresh = [m for m in messages if m["MessageId"] not in seen]
        misses = 0 if fresh else misses + 1
        seen.update(m["MessageId"] for m in fresh)
        yield from fresh


def _why(target: StackTarget, message: dict[str, Any]) -> Moved:
    """The message, and why it rests in the DLQ: for a job whose start kept failing (SQS moved it after
    maxReceiveCount) the ledger's latest `dispatch_error`; for one the dispatcher parked, the reason it
    attached; else "no reason recorded"."""
    job_id, route = _describe_body(message["Body"])
    attributes = message.get("MessageAttributes") or {}
    reason = str((attributes.get(REASON_ATTRIBUTE) or {}).get("StringValue") or "")
    if not job_id.startswith("("):
        record = show_job(target, job_id) or {}
        if record.get("state") == "dispatch_failed" and record.get("dispatch_error"):
            reason = str(record["dispatch_error"])
    count = str((message.get("Attributes") or {}).get("ApproximateReceiveCount", "?"))
    return Moved(message["MessageId"], job_id, route, count, reason or "no reason recorded")


def redrive_dlq(
    target: StackTarget,
    dry_run: bool = False,
    emit: Callable[[Moved], None] = lambda _: None,
    progress: Callable[[str], None] = lambda _: None,
    timeout: float = 600.0,
) -> Redrive:
    """Move every DLQ message back to the jobs queue (a dry run only lists them), each listed with the
    reason it rests there. The move is SQS's own message move task (StartMessageMoveTask): it keeps each
    message's body and attributes and moves them as new messages (receive count 0, a new id); a task
    already running for the DLQ is followed, not started twice. An endpoint without message move tasks
    (moto, so the local runtime) gets the same by receiving each message and sending it again with its
    body, message attributes and trace header; its id, sent time and other system attributes are new."""
    sqs = target.client("sqs")
    dlq_url = target.output("JobsDlqUrl")
    counts = sqs.get_queue_attributes(
        QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    in_dlq = int(counts.get("ApproximateNumberOfMessages", 0)) + int(
        counts.get("ApproximateNumberOfMessagesNotVisible", 0)
    )
    messages = []
    for message in _peek(target):
        entry = _why(target, message)
        emit(entry)
        messages.append(entry)
    result = Redrive(messages, in_dlq)
    if dry_run or not (messages or in_dlq):
        return result
    dlq_arn, queue_arn = _queue_arn(sqs, dlq_url), _queue_arn(sqs, target.output("JobsQueueUrl"))
    if move_tasks_supported(target, dlq_arn):
        task = _move_task(target, dlq_arn, queue_arn, progress, timeout)
        result.method, result.task = MOVE_TASK, task
        result.moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
    else:
        result.method, result.moved = RESEND, _resend(target)
    return result


def redrive(target: StackTarget, dry_run: bool = False, emit: Callable[[Moved], None] = lambda _: None) -> list[Moved]:
    """The messages a redrive (or its dry run) saw in the DLQ; see redrive_dlq."""
    return redrive_dlq(target, dry_run, emit).messages


def _queue_arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


# What an endpoint without the message move task API answers: moto's 500 for an action it lacks (its
# body is a web page, so the code is the bare status), or an AWS-style unknown-operation code.
_NO_SUCH_OPERATION = {"500", "InvalidAction", "UnknownOperationException", "NotImplemented"}


def move_tasks_supported(target: StackTarget, dlq_arn: str) -> bool:
    """Whether the endpoint has SQS's message move tasks: one read-only ListMessageMoveTasks, not retried."""
    try:
        target.client("sqs", single_attempt=True).list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1)
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")) in _NO_SUCH_OPERATION:
            return False
        raise
    return True


_MOVING = ("RUNNING", "CANCELLING")


def _latest_task(sqs: Any, dlq_arn: str) -> dict[str, Any] | None:
    tasks: list[dict[str, Any]] = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1).get("Results") or []
    return tasks[0] if tasks else None


def _move_task(
    target: StackTarget, dlq_arn: str, queue_arn: str, progress: Callable[[str], None], timeout: float
) -> dict[str, Any]:
    """Start a move task from the DLQ to the jobs queue (or follow the one running) until it ends."""
    sqs = target.client("sqs")
    running = _latest_task(sqs, dlq_arn)
    if running and running.get("Status") in _MOVING:
        progress(f"a message move task started {running.get('StartedTimestamp')} is running: following it")
    else:
        try:
            sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn)
        except ClientError:
            running = _latest_task(sqs, dlq_arn)  # started by someone else meanwhile: follow theirs
            if not (running and running.get("Status") in _MOVING):
                raise
    deadline = time.monotonic() + timeout
    while True:
        task = _latest_task(sqs, dlq_arn) or {}
        moved, total = task.get("ApproximateNumberOfMessagesMoved", 0), task.get("ApproximateNumberOfMessagesToMove")
        if task.get("Status") not in _MOVING:
            break
        progress(f"moving: {moved} of {total if total is not None else '?'} message(s)")
        if time.monotonic() > deadline:
            raise CliError(
                f"the message move task still runs after {timeout:.0f}s ({moved} moved): "
                "`testrelay redrive` again follows it (a running task is never started twice)",
                FAILED,
            )
        time.sleep(1.0)
    if task.get("Status") != "COMPLETED":
        why = task.get("FailureReason") or "no reason given"
        raise CliError(
            f"the message move task ended {task.get('Status')} after {moved} message(s): {why}; "
            "`testrelay redrive` moves the rest",
            FAILED,
        )
    return task


def _resend(target: StackTarget) -> int:
    """Move each DLQ message by sending it again (body, message attributes, trace header) and deleting it.
    Only what was in the DLQ when it started, as a move task does: a message parked again meanwhile (the
    dispatcher is quick to refuse a poison message twice) is left for the next redrive, not chased."""
    sqs = target.client("sqs")
    dlq_url, queue_url = target.output("JobsDlqUrl"), target.output("JobsQueueUrl")
    started_ms = int(time.time() * 1000)
    moved = 0
    while True:
        answer = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            AttributeNames=["AWSTraceHeader", "SentTimestamp"],
            MessageAttributeNames=["All"],
            VisibilityTimeout=60,
        )
        messages = answer.get("Messages") or []
        older = [m for m in messages if int((m.get("Attributes") or {}).get("SentTimestamp", 0)) < started_ms]
        for message in messages:
            if message not in older:
                sqs.change_message_visibility(
                    QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
        if not older:
            return moved
        for message in older:
            sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"], **_kept_attributes(message))
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1


def _kept_attributes(message: dict[str, Any]) -> dict[str, Any]:
    """What send_message takes to carry a received message's attributes and trace header on."""
    kept: dict[str, Any] = {}
    if message.get("MessageAttributes"):
        kept["MessageAttributes"] = {
            name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
            for name, value in message["MessageAttributes"].items()
        }
    trace = (message.get("Attributes") or {}).get("AWSTraceHeader")
    if trace:
        kept["MessageSystemAttributes"] = {"AWSTraceHeader": {"DataType": "String", "StringValue": trace}}
    return kept


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
