"""SQS batches whose failed records say why, at ERROR, with the job they belong to."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor

from testrelay.observability import job_keys_of, logger


def message_keys(body: str) -> dict[str, str]:
    """The job keys of a queued message's body; none when it is not a job."""
    try:
        return job_keys_of(json.loads(body))
    except ValueError:
        return {}


class LoggedBatchProcessor(BatchProcessor):
    """Powertools' BatchProcessor logs a failed record at DEBUG only, so a message that fails until it
    reaches the DLQ would leave no line: this one logs each failure at ERROR with its reason, the
    message id, its receive count and the job's keys."""

    def failure_handler(self, record: Any, exception: Any) -> Any:
        raw: Mapping[str, Any] = record if isinstance(record, Mapping) else {}
        attributes = raw.get("attributes")
        error = exception[1] if isinstance(exception, tuple) and len(exception) > 1 else exception
        details: dict[str, Any] = {
            "message_id": raw.get("messageId"),
            "receive_count": attributes.get("ApproximateReceiveCount") if isinstance(attributes, Mapping) else None,
            "reason": f"{type(error).__name__}: {error}"[:1000],
            **message_keys(str(raw.get("body") or "")),
        }
        logger.error("record failed; SQS delivers it again (after maxReceiveCount it moves to the DLQ)", extra=details)
        return super().failure_handler(record, exception)
