"""`testrelay redrive` against an SQS that has message move tasks (AWS; moto has none, so the calls are
checked against botocore's SQS model with a Stubber): the task is started from the DLQ to the jobs queue,
a running one is followed rather than started twice, and a task that fails says so in one line."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from testrelay_cli import operations
from testrelay_cli.cli_errors import FAILED, CliError
from testrelay_cli.operations import MOVE_TASK, move_tasks_supported, redrive_dlq
from testrelay_cli.stack_target import StackTarget

DLQ_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/relay-jobs-dlq"
QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/relay-jobs"
DLQ_ARN = "arn:aws:sqs:eu-west-1:123456789012:relay-jobs-dlq"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:relay-jobs"
PARKED = {
    "MessageId": "5fea7756-0ea4-451a-a703-a558b933e274",
    "ReceiptHandle": "handle-1",
    "MD5OfBody": "0" * 32,
    "Body": "not json at all",
    "Attributes": {"ApproximateReceiveCount": "2"},
    "MessageAttributes": {"failure_reason": {"DataType": "String", "StringValue": "not a job or retry request"}},
}


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StackTarget, Stubber, Stubber]]:
    monkeypatch.setattr(operations.time, "sleep", lambda _: None)
    target = StackTarget(outputs={"JobsDlqUrl": DLQ_URL, "JobsQueueUrl": QUEUE_URL}, region="eu-west-1")
    options: dict[str, Any] = {"region_name": "eu-west-1", "aws_access_key_id": "a", "aws_secret_access_key": "b"}
    sqs, probe = boto3.client("sqs", **options), boto3.client("sqs", **options)
    target._clients.update({"sqs": sqs, "sqs:once": probe})
    with Stubber(sqs) as stubbed, Stubber(probe) as probed:
        yield target, stubbed, probed
        stubbed.assert_no_pending_responses()
        probed.assert_no_pending_responses()


def _dlq_with_one_message(sqs: Stubber) -> None:
    sqs.add_response("get_queue_attributes", {"Attributes": {"ApproximateNumberOfMessages": "1"}})
    sqs.add_response("receive_message", {"Messages": [PARKED]})
    sqs.add_response("receive_message", {})
    sqs.add_response(
        "get_queue_attributes",
        {"Attributes": {"QueueArn": DLQ_ARN}},
        {"QueueUrl": DLQ_URL, "AttributeNames": ["QueueArn"]},
    )
    sqs.add_response(
        "get_queue_attributes",
        {"Attributes": {"QueueArn": QUEUE_ARN}},
        {"QueueUrl": QUEUE_URL, "AttributeNames": ["QueueArn"]},
    )


def _task(status: str, moved: int, **extra: Any) -> dict[str, Any]:
    return {
        "Results": [
            {
                "Status": status,
                "SourceArn": DLQ_ARN,
                "DestinationArn": QUEUE_ARN,
                "ApproximateNumberOfMessagesMoved": moved,
                "ApproximateNumberOfMessagesToMove": 1,
                "StartedTimestamp": 1796183549000,
                **extra,
            }
        ]
    }


def test_a_redrive_starts_a_move_task_from_the_dlq_to_the_jobs_queue(
    stack: tuple[StackTarget, Stubber, Stubber],
) -> None:
    target, sqs, probe = stack
    # Given a DLQ holding a parked message, on an SQS with message move tasks
    _dlq_with_one_message(sqs)
    probe.add_response("list_message_move_tasks", {"Results": []}, {"SourceArn": DLQ_ARN, "MaxResults": 1})
    sqs.add_response("list_message_move_tasks", _task("COMPLETED", 3), {"SourceArn": DLQ_ARN, "MaxResults": 1})
    sqs.add_response(
        "start_message_move_task", {"TaskHandle": "handle"}, {"SourceArn": DLQ_ARN, "DestinationArn": QUEUE_ARN}
    )
    sqs.add_response("list_message_move_tasks", _task("RUNNING", 0, TaskHandle="handle"))
    sqs.add_response("list_message_move_tasks", _task("COMPLETED", 1))
    lines: list[str] = []
    # When it is redriven
    result = redrive_dlq(target, progress=lines.append)
    # Then SQS's own move task moved it (body and attributes kept by SQS), and the listing kept its reason
    assert (result.method, result.moved, result.in_dlq) == (MOVE_TASK, 1, 1)
    assert [(m.job_id, m.reason, m.receive_count) for m in result.messages] == [
        ("(not a job)", "not a job or retry request", "2")
    ]
    assert lines == ["moving: 0 of 1 message(s)"]


def test_a_running_move_task_is_followed_not_started_twice(stack: tuple[StackTarget, Stubber, Stubber]) -> None:
    target, sqs, probe = stack
    # Given a move task someone started a moment ago
    _dlq_with_one_message(sqs)
    probe.add_response("list_message_move_tasks", _task("RUNNING", 0, TaskHandle="theirs"))
    sqs.add_response("list_message_move_tasks", _task("RUNNING", 0, TaskHandle="theirs"))
    sqs.add_response("list_message_move_tasks", _task("COMPLETED", 1))
    lines: list[str] = []
    # When redrive runs again
    result = redrive_dlq(target, progress=lines.append)
    # Then it starts nothing (no StartMessageMoveTask is stubbed) and reports the running task's outcome
    assert (result.method, result.moved) == (MOVE_TASK, 1)
    assert lines[0].startswith("a message move task started ")
    assert lines[0].endswith(" is running: following it")


def test_a_failed_move_task_says_why_in_one_line(stack: tuple[StackTarget, Stubber, Stubber]) -> None:
    target, sqs, probe = stack
    _dlq_with_one_message(sqs)
    probe.add_response("list_message_move_tasks", {"Results": []})
    sqs.add_response("list_message_move_tasks", {"Results": []})
    sqs.add_response("start_message_move_task", {"TaskHandle": "handle"})
    sqs.add_response(
        "list_message_move_tasks", _task("FAILED", 0, FailureReason="AWS.SimpleQueueService.NonExistentQueue")
    )
    with pytest.raises(CliError) as raised:
        redrive_dlq(target)
    assert raised.value.code == FAILED
    assert str(raised.value) == (
        "the message move task ended FAILED after 0 message(s): AWS.SimpleQueueService.NonExistentQueue; "
        "`testrelay redrive` moves the rest"
    )


def test_a_dry_run_starts_nothing_and_asks_nothing_of_move_tasks(stack: tuple[StackTarget, Stubber, Stubber]) -> None:
    target, sqs, _ = stack
    sqs.add_response("get_queue_attributes", {"Attributes": {"ApproximateNumberOfMessages": "1"}})
    sqs.add_response("receive_message", {"Messages": [PARKED]})
    sqs.add_response("receive_message", {})
    result = redrive_dlq(target, dry_run=True)
    assert (result.method, result.moved, len(result.messages)) == ("", 0, 1)


@pytest.mark.parametrize(("code", "status"), [("500", 500), ("InvalidAction", 400)])
def test_an_endpoint_without_move_tasks_is_detected(
    stack: tuple[StackTarget, Stubber, Stubber], code: str, status: int
) -> None:
    # moto answers an action it lacks with a bare 500; an SQS-like endpoint may say InvalidAction
    target, _, probe = stack
    probe.add_client_error("list_message_move_tasks", service_error_code=code, http_status_code=status)
    assert move_tasks_supported(target, DLQ_ARN) is False


def test_a_denied_probe_is_an_error_not_a_fallback(stack: tuple[StackTarget, Stubber, Stubber]) -> None:
    target, _, probe = stack
    probe.add_client_error("list_message_move_tasks", service_error_code="AccessDenied", http_status_code=403)
    with pytest.raises(Exception, match="AccessDenied"):
        move_tasks_supported(target, DLQ_ARN)
