"""DispatchFunction: jobs from SQS become executions named after the job, once."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3

from testrelay.models import routes
from testrelay.models.ci_event import CiEvent
from testrelay.models.job import Job
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


def test_a_poisoned_message_fails_alone_and_the_rest_of_the_batch_goes_on(stack: Stack) -> None:
    good = _job()
    event = _sqs_event("not a job", good.model_dump_json(), json.dumps({"id": "x", "schema_version": 9}))
    answer = handler(event, FakeLambdaContext())
    failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
    assert failed == {event["Records"][0]["messageId"], event["Records"][2]["messageId"]}
    assert [e["name"] for e in _executions(stack)] == [good.id]
