"""The jobs queue: one SendMessageBatch per ten jobs."""

from __future__ import annotations

from collections.abc import Sequence

from testrelay.aws.clients import client
from testrelay.errors import RelayError
from testrelay.models.job import Job

SQS_BATCH_LIMIT = 10


class EnqueueFailed(RelayError):
    """SQS refused some of the jobs; the webhook answers 5xx so the CI (or its operator) redelivers."""


def send_jobs(queue_url: str, jobs: Sequence[Job]) -> None:
    for start in range(0, len(jobs), SQS_BATCH_LIMIT):
        chunk = jobs[start : start + SQS_BATCH_LIMIT]
        answer = client("sqs").send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {
                    "Id": str(index),
                    "MessageBody": job.model_dump_json(),
                    "MessageAttributes": {
                        "job_id": {"DataType": "String", "StringValue": job.id},
                        "kind": {"DataType": "String", "StringValue": job.kind},
                    },
                }
                for index, job in enumerate(chunk)
            ],
        )
        failed = answer.get("Failed") or []
        if failed:
            reasons = ", ".join(f"{chunk[int(f['Id'])].id}: {f.get('Code')}" for f in failed)
            raise EnqueueFailed(f"queue refused {len(failed)} job(s): {reasons}")
