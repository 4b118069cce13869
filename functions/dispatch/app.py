"""SQS jobs -> state machine executions, with partial batch failures."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from testrelay.batch_logging import LoggedBatchProcessor, message_keys
from testrelay.observability import job_keys, lambda_entry
from testrelay.relay.dispatch import handle_message

processor = LoggedBatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    # A message that can never be processed is parked in the DLQ with its reason (and counts as done);
    # one that failed for a passing reason fails this record only, and SQS delivers it again.
    with job_keys(message_keys(record.body)):
        handle_message(record.body, record.raw_event.get("messageAttributes"))


@lambda_entry
def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
