"""The jobs queue: SendMessageBatch calls of at most ten jobs and SQS's batch size limit."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from testrelay.aws.clients import client
from testrelay.errors import RelayError

SQS_BATCH_LIMIT = 10
# SQS refuses a batch whose messages (bodies and attributes) add up to more than 256 KiB.
SQS_BATCH_BYTES = 256 * 1024
# The message attribute that carries why a message rests in the DLQ (set when the dispatcher parks it).
REASON_ATTRIBUTE = "failure_reason"
# SQS refuses more than ten message attributes; a parked message keeps at most this many of its own.
_MAX_ATTRIBUTES = 10


class Queueable(Protocol):
    """A job (the pydantic model, or the webhook's JobMessage built without it)."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    def message_body(self) -> str: ...


class EnqueueFailed(RelayError):
    """SQS refused some of the jobs; the webhook answers 5xx so the CI (or its operator) redelivers.
    Job ids are deterministic, so jobs of a batch that did go through are not started twice."""


def send_jobs(queue_url: str, jobs: Sequence[Queueable]) -> None:
    for chunk in _batches([_entry(job) for job in jobs]):
        try:
            answer = client("sqs").send_message_batch(QueueUrl=queue_url, Entries=chunk)
        except (ClientError, BotoCoreError) as exc:
            # Throttling, a batch SQS finds too long, an endpoint out of reach: all "try again later".
            raise EnqueueFailed(f"queue refused {len(chunk)} job(s): {exc}") from exc
        failed = answer.get("Failed") or []
        if failed:
            by_id = {entry["Id"]: entry["MessageAttributes"]["job_id"]["StringValue"] for entry in chunk}
            reasons = ", ".join(f"{by_id.get(f['Id'], f['Id'])}: {f.get('Code')}" for f in failed)
            raise EnqueueFailed(f"queue refused {len(failed)} job(s): {reasons}")


def _entry(job: Queueable) -> tuple[dict[str, Any], int]:
    """The batch entry of a job (without its Id) and the bytes SQS counts for it."""
    body = job.message_body()
    size = len(body.encode()) + len(job.id) + len(job.kind) + len("job_idkindStringString")
    if size > SQS_BATCH_BYTES:
        raise EnqueueFailed(f"job {job.id} is {size} bytes; an SQS message holds at most {SQS_BATCH_BYTES}")
    attributes = {
        "job_id": {"DataType": "String", "StringValue": job.id},
        "kind": {"DataType": "String", "StringValue": job.kind},
    }
    return {"MessageBody": body, "MessageAttributes": attributes}, size


def _batches(entries: list[tuple[dict[str, Any], int]]) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    total = 0
    for entry, size in entries:
        if chunk and (len(chunk) == SQS_BATCH_LIMIT or total + size > SQS_BATCH_BYTES):
            yield chunk
            chunk, total = [], 0
        chunk.append({"Id": str(len(chunk)), **entry})
        total += size
    if chunk:
        yield chunk


def park(dlq_url: str, body: str, attributes: Mapping[str, Any] | None, reason: str) -> None:
    """Send a message that can never be processed to the DLQ with the reason beside it (the SQS event
    source moves a message after maxReceiveCount unchanged, so only a parked one carries its reason)."""
    kept = {
        name: {
            "DataType": value.get("dataType") or value.get("DataType") or "String",
            "StringValue": value.get("stringValue") or value.get("StringValue") or "",
        }
        for name, value in (attributes or {}).items()
        if name != REASON_ATTRIBUTE and (value.get("stringValue") or value.get("StringValue"))
    }
    kept = dict(list(kept.items())[: _MAX_ATTRIBUTES - 1])
    kept[REASON_ATTRIBUTE] = {"DataType": "String", "StringValue": reason[:1000] or "unknown"}
    client("sqs").send_message(QueueUrl=dlq_url, MessageBody=body or "(empty)", MessageAttributes=kept)
