"""SQS jobs -> state machine executions, with partial batch failures."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from testrelay.models.job import Job
from testrelay.observability import lambda_entry
from testrelay.relay.dispatch import dispatch

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    # A body that is not a Job fails this record only; after maxReceiveCount it rests in the DLQ.
    dispatch(Job.model_validate_json(record.body))


@lambda_entry
def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
