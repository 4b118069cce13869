"""DispatchFunction: jobs from SQS become executions named after the job, once."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from testrelay.models import routes
from testrelay.models.ci_event import CiEvent
from testrelay.models.job import Job
from testrelay.settings import get_settings
from testrelay_local.functions import load_handler
from tests.integration.handlers.conftest import Stack
from tests.support import FakeLambdaContext

handler = load_handler("functions/dispatch")


def _job(delivery: str = "d-1") -> Job:
    event = CiEvent(
        provider="github",
        event="workflow_run",
        delivery_key=delivery,
        repository="octo-org/octo-repo",
        commit_sha="3484a3fb816e0859fd6e1cea078d76385ff50625",
        outcome="success",
    )
    return Job.for_event(event, routes.RouteAction(name="checkout", testsigma=routes.TestsigmaPlan(test_plan_id=2741)))


def _sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "handle",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "0",
                    "SenderId": "x",
                    "ApproximateFirstReceiveTimestamp": "0",
                },
                "messageAttributes": {},
                "md5OfBody": "x",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs",
                "awsRegion": "us-east-1",
            }
            for body in bodies
        ]
    }


def _executions(stack: Stack) -> list[dict[str, Any]]:
    listed = boto3.client("stepfunctions").list_executions(stateMachineArn=stack.state_machine_arn)
    return list(listed["executions"])


def test_each_job_starts_one_execution_named_after_it(stack: Stack) -> None:
    # Given two jobs in one batch
    first, second = _job("d-1"), _job("d-2")
    event = _sqs_event(first.model_dump_json(), second.model_dump_json())
    # When the batch is dispatched
    answer = handler(event, FakeLambdaContext())
    # Then both start, under their job ids, with the job as input, and the ledger knows them
    assert answer == {"batchItemFailures": []}
    executions = {e["name"]: e for e in _executions(stack)}
    assert set(executions) == {first.id, second.id}
    described = boto3.client("stepfunctions").describe_execution(executionArn=executions[first.id]["executionArn"])
    assert json.loads(described["input"])["job"]["id"] == first.id
    item = boto3.resource("dynamodb").Table(stack.table).get_item(Key={"pk": f"JOB#{first.id}", "sk": "JOB"})["Item"]
    assert item["state"] == "dispatched"
    assert item["route"] == "checkout"


def test_a_redelivered_job_is_not_started_twice(stack: Stack) -> None:
    job = _job()
    for _ in range(3):
        assert handler(_sqs_event(job.model_dump_json()), FakeLambdaContext()) == {"batchItemFailures": []}
    assert [e["name"] for e in _executions(stack)] == [job.id]


def _dlq(stack: Stack) -> list[dict[str, Any]]:
    answer = boto3.client("sqs").receive_message(
        QueueUrl=stack.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )
    return list(answer.get("Messages") or [])


def test_messages_that_can_never_be_processed_are_parked_in_the_dlq_with_their_reason(stack: Stack) -> None:
    # Given a batch with a body that is not JSON, a job of an unknown schema, and a good job
    good = _job()
    event = _sqs_event("not a job", good.model_dump_json(), json.dumps({"id": "x", "schema_version": 9}))
    # When it is dispatched
    answer = handler(event, FakeLambdaContext())
    # Then the good job starts, and the other two count as processed (they would only loop) ...
    assert answer == {"batchItemFailures": []}
    assert [e["name"] for e in _executions(stack)] == [good.id]
    # ... because they rest in the DLQ, unchanged, each with the reason it can never be processed
    parked = {m["Body"]: m["MessageAttributes"]["failure_reason"]["StringValue"] for m in _dlq(stack)}
    assert set(parked) == {"not a job", json.dumps({"id": "x", "schema_version": 9})}
    assert parked["not a job"].startswith("not a job or retry request: ")
    assert "schema_version" in parked[json.dumps({"id": "x", "schema_version": 9})]


def test_a_failed_start_keeps_its_reason_in_the_ledger_and_fails_the_message(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a state machine that does not exist (a stack half deployed)
    monkeypatch.setenv("STATE_MACHINE_ARN", stack.state_machine_arn + "-gone")
    get_settings.cache_clear()
    job = _job()
    event = _sqs_event(job.model_dump_json())
    # When the job is dispatched, the message fails (SQS hands it back, then moves it to the DLQ) ...
    with pytest.raises(BatchProcessingError):  # Powertools' answer when every record of a batch failed
        handler(event, FakeLambdaContext())
    # ... and the ledger says why
    item = boto3.resource("dynamodb").Table(stack.table).get_item(Key={"pk": f"JOB#{job.id}", "sk": "JOB"})["Item"]
    assert item["state"] == "dispatch_failed"
    assert "StateMachineDoesNotExist" in item["dispatch_error"]
    # And once the cause is fixed, the next delivery starts it and the record says so
    monkeypatch.setenv("STATE_MACHINE_ARN", stack.state_machine_arn)
    get_settings.cache_clear()
    assert handler(_sqs_event(job.model_dump_json()), FakeLambdaContext()) == {"batchItemFailures": []}
    item = boto3.resource("dynamodb").Table(stack.table).get_item(Key={"pk": f"JOB#{job.id}", "sk": "JOB"})["Item"]
    assert item["state"] == "dispatched"
    assert [e["name"] for e in _executions(stack)] == [job.id]


def _failed_job(stack: Stack) -> Job:
    job = _job("d-failed")
    handler(_sqs_event(job.model_dump_json()), FakeLambdaContext())
    boto3.resource("dynamodb").Table(stack.table).update_item(
        Key={"pk": f"JOB#{job.id}", "sk": "JOB"},
        UpdateExpression="SET #s = :failed",
        ExpressionAttributeNames={"#s": "state"},
        ExpressionAttributeValues={":failed": "failed"},
    )
    return job


def test_retry_requests_through_the_queue_start_one_attempt_however_often_they_arrive(stack: Stack) -> None:
    # Given a job whose first attempt failed
    job = _failed_job(stack)
    request = json.dumps({"retry_of": job.id, "attempt": 2})
    # When the same retry request arrives twice in one batch, then once more
    assert handler(_sqs_event(request, request), FakeLambdaContext()) == {"batchItemFailures": []}
    assert handler(_sqs_event(request), FakeLambdaContext()) == {"batchItemFailures": []}
    # Then attempt 2 started once, named after the job and the attempt, with the job as input
    executions = sorted(e["name"] for e in _executions(stack))
    assert executions == sorted([job.id, f"{job.id}-a2"])
    item = boto3.resource("dynamodb").Table(stack.table).get_item(Key={"pk": f"JOB#{job.id}", "sk": "JOB"})["Item"]
    assert item["attempt"] == 2
    assert item["execution"] == f"{job.id}-a2"
    assert _dlq(stack) == []
    # And the job's original message, delivered again, does not start attempt 1 beside it
    assert handler(_sqs_event(job.model_dump_json()), FakeLambdaContext()) == {"batchItemFailures": []}
    assert len(_executions(stack)) == 2
    # And a request for an attempt the job is not at (a stale one) is parked with the reason
    stale = json.dumps({"retry_of": job.id, "attempt": 5})
    assert handler(_sqs_event(stale), FakeLambdaContext()) == {"batchItemFailures": []}
    [parked] = _dlq(stack)
    assert parked["MessageAttributes"]["failure_reason"]["StringValue"].startswith(
        f"retry of job {job.id} as attempt 5 refused: job {job.id} is still running (attempt 2"
    )


def test_a_job_that_never_started_is_retried_once_and_its_redriven_message_starts_nothing(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a job whose execution could not be started (its message would rest in the DLQ)
    monkeypatch.setenv("STATE_MACHINE_ARN", stack.state_machine_arn + "-gone")
    get_settings.cache_clear()
    job = _job("d-never")
    with pytest.raises(BatchProcessingError):
        handler(_sqs_event(job.model_dump_json()), FakeLambdaContext())
    monkeypatch.setenv("STATE_MACHINE_ARN", stack.state_machine_arn)
    get_settings.cache_clear()
    # When it is retried, and later its original message is redriven from the DLQ
    retry = json.dumps({"retry_of": job.id, "attempt": 2})
    assert handler(_sqs_event(retry), FakeLambdaContext()) == {"batchItemFailures": []}
    assert handler(_sqs_event(job.model_dump_json()), FakeLambdaContext()) == {"batchItemFailures": []}
    # Then only attempt 2 ran: the first attempt never starts beside it
    assert [e["name"] for e in _executions(stack)] == [f"{job.id}-a2"]
