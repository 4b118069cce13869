"""The jobs queue adapter: SQS's ten-entry and 256 KiB batch limits, and every refusal as EnqueueFailed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from testrelay.aws import queue
from testrelay.aws.queue import SQS_BATCH_BYTES, EnqueueFailed, send_jobs
from testrelay.models.job_message import JobMessage
from tests.support import demo_job


class _RecordingSqs:
    def __init__(self, failed: list[dict[str, Any]] | None = None, error: Exception | None = None) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.failed = failed or []
        self.error = error

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.error:
            raise self.error
        self.batches.append(Entries)
        return {"Failed": self.failed}


def _big_job(index: int, size: int) -> JobMessage:
    """A queued job of about `size` bytes (a route copy with a large case map makes real jobs this big)."""
    job = demo_job(f"delivery-{index}")
    body = json.loads(job.message_body())
    body["route"]["padding"] = "n" * size
    return JobMessage(id=job.id, kind=job.kind, body=json.dumps(body))


@pytest.fixture
def sqs(monkeypatch: pytest.MonkeyPatch) -> _RecordingSqs:
    recording = _RecordingSqs()
    monkeypatch.setattr(queue, "client", lambda name: recording)
    return recording


def test_jobs_go_in_batches_of_ten_at_most(sqs: _RecordingSqs) -> None:
    send_jobs("q", [demo_job(f"d-{index}") for index in range(23)])
    assert [len(batch) for batch in sqs.batches] == [10, 10, 3]


def test_a_batch_never_exceeds_sqs_batch_size(sqs: _RecordingSqs) -> None:
    # Given ten jobs of ~60 KB each: 600 KB would not fit one SendMessageBatch
    send_jobs("q", [_big_job(index, 60_000) for index in range(10)])
    # Then they are spread over batches SQS accepts, each job sent once
    sizes = [sum(len(entry["MessageBody"].encode()) for entry in batch) for batch in sqs.batches]
    assert len(sqs.batches) > 1
    assert max(sizes) <= SQS_BATCH_BYTES
    sent = [json.loads(entry["MessageBody"])["id"] for batch in sqs.batches for entry in batch]
    assert len(sent) == len(set(sent)) == 10


def test_a_job_no_sqs_message_can_hold_is_refused_before_sending(sqs: _RecordingSqs) -> None:
    with pytest.raises(EnqueueFailed, match="at most"):
        send_jobs("q", [_big_job(0, SQS_BATCH_BYTES)])
    assert sqs.batches == []


@pytest.mark.parametrize(
    "error",
    [
        ClientError({"Error": {"Code": "AWS.SimpleQueueService.BatchRequestTooLong"}}, "SendMessageBatch"),
        EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com"),
    ],
)
def test_sqs_and_connection_errors_become_enqueue_failed(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    monkeypatch.setattr(queue, "client", lambda name: _RecordingSqs(error=error))
    with pytest.raises(EnqueueFailed):
        send_jobs("q", [demo_job("d-1")])


def test_entries_sqs_refuses_are_named_by_job(monkeypatch: pytest.MonkeyPatch) -> None:
    job = demo_job("d-1")
    monkeypatch.setattr(queue, "client", lambda name: _RecordingSqs(failed=[{"Id": "0", "Code": "InternalError"}]))
    with pytest.raises(EnqueueFailed, match=f"{job.id}: InternalError"):
        send_jobs("q", [job])
