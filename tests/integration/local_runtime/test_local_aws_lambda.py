"""Lambda invocations reach in-process handlers with Lambda's contract: payloads, errors, context."""

from __future__ import annotations

import json
import threading
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent,
)

from testrelay_local.lambda_router import LambdaContextLike
from testrelay_local.local_aws import LocalAws


class VendorThrottled(Exception):
    pass


def invoke(local_aws: LocalAws, name: str, payload: Any, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    response = local_aws.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload), **kwargs)
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


def test_invoke_runs_the_handler_with_the_event_and_a_lambda_context(local_aws: LocalAws) -> None:
    # Given a registered handler that reports what it was given
    def handler(event: dict[str, Any], context: LambdaContextLike) -> dict[str, Any]:
        return {
            "event": event,
            "function_name": context.function_name,
            "arn": context.invoked_function_arn,
            "memory": context.memory_limit_in_mb,
            "request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
        }

    arn = local_aws.register_lambda("echo", handler, timeout=12, memory_size=512)

    # When it is invoked twice through the Lambda API
    response, first = invoke(local_aws, "echo", {"job": "j-1"})
    _, second = invoke(local_aws, arn, {"job": "j-2"})

    # Then the handler answered with the event and a context like the Lambda runtime's
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert first["event"] == {"job": "j-1"}
    assert second["event"] == {"job": "j-2"}
    assert first["function_name"] == "echo"
    assert first["arn"] == arn
    assert first["memory"] == 512
    assert 0 < first["remaining_ms"] <= 12_000
    assert first["request_id"] != second["request_id"]


def test_a_raising_handler_is_a_function_error_named_after_the_exception(local_aws: LocalAws) -> None:
    # Given a handler that raises a domain error
    def handler(event: dict[str, Any], context: LambdaContextLike) -> None:
        raise VendorThrottled("429 from Testsigma")

    local_aws.register_lambda("throttled", handler)

    # When it is invoked
    response, payload = invoke(local_aws, "throttled", {})

    # Then Lambda reports an unhandled function error with the exception's type and message
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "VendorThrottled"
    assert payload["errorMessage"] == "429 from Testsigma"
    assert any("raise VendorThrottled" in frame for frame in payload["stackTrace"])


def test_an_answer_that_is_not_json_is_a_marshal_error(local_aws: LocalAws) -> None:
    # Given a handler returning something JSON cannot carry
    local_aws.register_lambda("unmarshallable", lambda event, context: {"when": object()})

    # When it is invoked
    response, payload = invoke(local_aws, "unmarshallable", {})

    # Then the error is the runtime's, not the handler's
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.MarshalError"


def test_a_function_without_a_registered_handler_fails_loudly(local_aws: LocalAws) -> None:
    # Given a function created in moto directly, with no in-process handler
    local_aws.client("lambda").create_function(
        FunctionName="orphan",
        Runtime="python3.12",
        Role=local_aws.execution_role_arn,
        Handler="app.lambda_handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
    )

    # When it is invoked
    response, payload = invoke(local_aws, "orphan", {})

    # Then the error names the missing handler instead of echoing the payload
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "Runtime.HandlerNotFound"
    assert "register_lambda" in payload["errorMessage"]


def test_an_event_invocation_answers_at_once_and_runs_the_handler(local_aws: LocalAws) -> None:
    # Given a handler that signals when it ran
    ran = threading.Event()
    received: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: LambdaContextLike) -> None:
        received.append(event)
        ran.set()

    local_aws.register_lambda("fire-and-forget", handler)

    # When it is invoked asynchronously
    response, _ = invoke(local_aws, "fire-and-forget", {"n": 1}, InvocationType="Event")

    # Then Lambda accepted it and the handler ran with the event
    assert response["StatusCode"] == 202
    assert ran.wait(5)
    assert received == [{"n": 1}]


def test_handlers_reach_moto_with_plain_boto3_clients(local_aws: LocalAws) -> None:
    # Given a queue and a handler that sends to it with a client built from the environment alone
    queue_url = local_aws.client("sqs").create_queue(QueueName="jobs")["QueueUrl"]

    def handler(event: dict[str, Any], context: LambdaContextLike) -> dict[str, str]:
        sent = boto3.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(event))
        return {"message_id": sent["MessageId"]}

    local_aws.register_lambda("enqueue", handler)

    # When the handler runs
    _, payload = invoke(local_aws, "enqueue", {"job": "j-7"})

    # Then its message is in the moto queue
    messages = local_aws.client("sqs").receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert [(m["MessageId"], json.loads(m["Body"])) for m in messages] == [(payload["message_id"], {"job": "j-7"})]


def test_the_context_serves_powertools_logger_and_idempotency(
    local_aws: LocalAws, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an idempotency table and a handler using Powertools' Logger and idempotency on it
    local_aws.client("dynamodb").create_table(
        TableName="idempotency",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    logger = Logger(service="local-runtime-test")
    persistence = DynamoDBPersistenceLayer(table_name="idempotency")
    config = IdempotencyConfig(event_key_jmespath="job")
    runs: list[str] = []

    @logger.inject_lambda_context
    @idempotent(persistence_store=persistence, config=config)
    def handler(event: dict[str, Any], context: LambdaContextLike) -> dict[str, str]:
        runs.append(event["job"])
        logger.info("triggered")
        return {"run": f"run-for-{event['job']}"}

    local_aws.register_lambda("trigger", handler)

    # When the same job is delivered twice
    _, first = invoke(local_aws, "trigger", {"job": "j-9"})
    _, second = invoke(local_aws, "trigger", {"job": "j-9"})

    # Then the work ran once, both answers agree, and the log line carries the function's context
    assert runs == ["j-9"]
    assert first == second == {"run": "run-for-j-9"}
    (line,) = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"triggered"' in line]
    assert line["function_name"] == "trigger"
    assert line["function_memory_size"] == 128
    assert line["function_request_id"]
