"""Plays the SQS event source mapping: batches, partial batch failures, visibility time-outs, DLQ.

Messages a handler reports as failed are left alone, so SQS itself makes them visible again after
the visibility timeout and moves them to the DLQ after maxReceiveCount, as in AWS. The queue's
timeout (200 s in template.yaml) is scaled like every other wait of the local runtime (`time_scale`,
at least 1 s), so a message that keeps failing reaches the DLQ in seconds, not ~17 minutes.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from typing import Any

from testrelay_local.lambda_router import LocalLambdaContext

log = logging.getLogger(__name__)


def scaled_visibility(seconds: int, time_scale: float) -> int:
    """The queue's visibility timeout at the runtime's time scale: whole seconds (SQS's unit), >= 1."""
    return max(1, math.ceil(seconds * time_scale))


class SqsPoller:
    def __init__(
        self,
        sqs: Any,
        queue_url: str,
        handler: Callable[[Any, Any], Any],
        function_name: str = "DispatchFunction",
        batch_size: int = 10,
        wait_seconds: int = 1,
        time_scale: float = 1.0,
    ) -> None:
        self._sqs = sqs
        self._queue_url = queue_url
        self._handler = handler
        self._function_name = function_name
        self._batch_size = batch_size
        self._wait_seconds = wait_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqs-poller", daemon=True)
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn", "VisibilityTimeout"])[
            "Attributes"
        ]
        self._queue_arn = attributes["QueueArn"]
        self.visibility_timeout = scaled_visibility(int(attributes.get("VisibilityTimeout", 30)), time_scale)
        self.batches = 0
        self.failures = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=self._wait_seconds + 5)

    def poll_once(self) -> int:
        """Receive one batch and hand it to the handler; returns how many messages it held."""
        received = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=self._wait_seconds,
            VisibilityTimeout=self.visibility_timeout,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = received.get("Messages") or []
        if not messages:
            return 0
        event = {"Records": [self._record(message) for message in messages]}
        context = LocalLambdaContext(
            function_name=self._function_name,
            function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{self._function_name}",
            memory_limit_in_mb=256,
            timeout_seconds=30,
        )
        self.batches += 1
        try:
            answer = self._handler(event, context) or {}
        except Exception:  # a crashed invocation fails the whole batch, as in Lambda
            self.failures += len(messages)
            return len(messages)
        failed = {item["itemIdentifier"] for item in answer.get("batchItemFailures", [])}
        self.failures += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        return len(messages)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception:  # keep polling as the real mapping does; the server may be restarting
                log.exception("polling %s failed; retrying", self._queue_url)
                self._stopping.wait(0.5)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value["DataType"],
                }
                for name, value in (message.get("MessageAttributes") or {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self._queue_arn,
            "awsRegion": "us-east-1",
        }
