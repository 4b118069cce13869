"""The real ASL interpreter runs through LocalAws: Choice, Wait, Retry, Catch, Map and time scaling."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest

from testrelay_local.lambda_router import LambdaContextLike
from testrelay_local.local_aws import LocalAws

RunExecution = Callable[..., dict[str, Any]]


class VendorThrottled(Exception):
    pass


class VendorRejected(Exception):
    pass


class FlakyVendor:
    """A handler that raises `error` for its first `failures` calls, then answers."""

    def __init__(self, failures: int, error: type[Exception] = VendorThrottled) -> None:
        self.failures = failures
        self.error = error
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: LambdaContextLike) -> dict[str, Any]:
        with self._lock:
            self.calls += 1
            attempt = self.calls
        if attempt <= self.failures:
            raise self.error(f"attempt {attempt} refused")
        return {"attempts": attempt}


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any], context: LambdaContextLike) -> dict[str, Any]:
        self.events.append(event)
        return {"recorded": True}


def double(event: dict[str, Any], context: LambdaContextLike) -> int:
    return int(event["value"]) * 2


def relay_like_definition(vendor_arn: str, double_arn: str, record_failure_arn: str) -> dict[str, Any]:
    lambda_invoke = "arn:aws:states:::lambda:invoke"
    return {
        "StartAt": "Route",
        "States": {
            "Route": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.mode", "StringEquals": "skip", "Next": "Skipped"}],
                "Default": "Pause",
            },
            "Skipped": {"Type": "Pass", "Result": {"skipped": True}, "End": True},
            "Pause": {"Type": "Wait", "SecondsPath": "$.pause", "Next": "CallVendor"},
            "CallVendor": {
                "Type": "Task",
                "Resource": lambda_invoke,
                "Parameters": {"FunctionName": vendor_arn, "Payload.$": "$"},
                "ResultSelector": {"attempts.$": "$.Payload.attempts"},
                "ResultPath": "$.vendor",
                "Retry": [
                    {"ErrorEquals": ["VendorThrottled"], "IntervalSeconds": 30, "MaxAttempts": 3, "BackoffRate": 2}
                ],
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RecordFailure"}],
                "Next": "DoubleEach",
            },
            "DoubleEach": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"value.$": "$$.Map.Item.Value"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Double",
                    "States": {
                        "Double": {
                            "Type": "Task",
                            "Resource": lambda_invoke,
                            "Parameters": {"FunctionName": double_arn, "Payload.$": "$"},
                            "OutputPath": "$.Payload",
                            "End": True,
                        }
                    },
                },
                "ResultPath": "$.doubled",
                "End": True,
            },
            # The function ARN as Resource: the form relay.asl.json uses.
            "RecordFailure": {
                "Type": "Task",
                "Resource": record_failure_arn,
                "ResultPath": "$.recorded",
                "Next": "Failed",
            },
            "Failed": {"Type": "Fail", "Error": "RelayFailed", "Cause": "the vendor call failed"},
        },
    }


def deploy(local_aws: LocalAws, vendor: FlakyVendor, recorder: Recorder) -> str:
    definition = relay_like_definition(
        vendor_arn=local_aws.register_lambda("vendor", vendor),
        double_arn=local_aws.register_lambda("double", double),
        record_failure_arn=local_aws.register_lambda("record-failure", recorder),
    )
    created = local_aws.client("stepfunctions").create_state_machine(
        name="relay-like", definition=json.dumps(definition), roleArn=local_aws.execution_role_arn
    )
    return str(created["stateMachineArn"])


def events_of(execution: dict[str, Any], event_type: str) -> list[dict[str, Any]]:
    return [event for event in execution["events"] if event["type"] == event_type]


def task_errors(execution: dict[str, Any]) -> list[str]:
    return [event["taskFailedEventDetails"]["error"] for event in events_of(execution, "TaskFailed")]


def test_retries_a_custom_error_until_the_handler_succeeds(local_aws: LocalAws, run_execution: RunExecution) -> None:
    # Given a vendor handler that is throttled twice, then answers, behind Wait, Retry and a Map
    vendor, recorder = FlakyVendor(failures=2), Recorder()
    state_machine = deploy(local_aws, vendor, recorder)

    # When an execution waits an hour (SecondsPath) and calls the vendor
    execution = run_execution(state_machine, "job-retried", {"mode": "run", "pause": 3600, "items": [1, 2, 3]})

    # Then the task was retried on the Lambda's errorType and the run went on with the third answer
    assert execution["status"] == "SUCCEEDED"
    output = json.loads(execution["output"])
    assert output["vendor"] == {"attempts": 3}
    assert output["doubled"] == [2, 4, 6]
    assert task_errors(execution) == ["VendorThrottled", "VendorThrottled"]
    assert vendor.calls == 3
    assert recorder.events == []
    # And the hour-long Wait and the 30 s + 60 s retry intervals took no real time at scale 0
    assert len(events_of(execution, "WaitStateExited")) == 1
    assert (execution["stopDate"] - execution["startDate"]).total_seconds() < 5


def test_choice_takes_the_branch_the_input_selects(local_aws: LocalAws, run_execution: RunExecution) -> None:
    # Given the relay-like state machine
    vendor, recorder = FlakyVendor(failures=0), Recorder()
    state_machine = deploy(local_aws, vendor, recorder)

    # When the input asks to skip
    execution = run_execution(state_machine, "job-skipped", {"mode": "skip"})

    # Then the Choice went to the Pass state and no function ran
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"]) == {"skipped": True}
    assert vendor.calls == 0
    assert events_of(execution, "TaskScheduled") == []


def test_catch_sends_an_error_without_retry_to_the_failure_branch(
    local_aws: LocalAws, run_execution: RunExecution
) -> None:
    # Given a vendor handler that rejects the request (no Retry matches that error)
    vendor, recorder = FlakyVendor(failures=1, error=VendorRejected), Recorder()
    state_machine = deploy(local_aws, vendor, recorder)

    # When an execution calls it
    execution = run_execution(state_machine, "job-rejected", {"mode": "run", "pause": 0, "items": []})

    # Then the Catch passed the Lambda error to RecordFailure, once, and the execution failed
    assert execution["status"] == "FAILED"
    assert execution["error"] == "RelayFailed"
    assert vendor.calls == 1
    (recorded,) = recorder.events
    assert recorded["error"]["Error"] == "VendorRejected"
    cause = json.loads(recorded["error"]["Cause"])
    assert cause["errorType"] == "VendorRejected"
    assert cause["errorMessage"] == "attempt 1 refused"
    assert task_errors(execution) == ["VendorRejected"]


def test_catch_takes_over_when_the_retries_are_exhausted(local_aws: LocalAws, run_execution: RunExecution) -> None:
    # Given a vendor handler that is always throttled
    vendor, recorder = FlakyVendor(failures=100), Recorder()
    state_machine = deploy(local_aws, vendor, recorder)

    # When an execution calls it
    execution = run_execution(state_machine, "job-exhausted", {"mode": "run", "pause": 0, "items": []})

    # Then the first attempt and MaxAttempts 3 retries ran, then the failure branch
    assert execution["status"] == "FAILED"
    assert vendor.calls == 4
    assert task_errors(execution) == ["VendorThrottled"] * 4
    (recorded,) = recorder.events
    assert recorded["error"]["Error"] == "VendorThrottled"


def test_time_scale_shortens_waits_and_retry_intervals_in_proportion(
    local_aws: LocalAws, run_execution: RunExecution
) -> None:
    # Given a time scale of 1/100 and a vendor handler throttled twice
    local_aws.time_scale = 0.01
    vendor, recorder = FlakyVendor(failures=2), Recorder()
    state_machine = deploy(local_aws, vendor, recorder)

    # When an execution waits 100 s, then retries after 30 s and 60 s (BackoffRate 2)
    execution = run_execution(state_machine, "job-scaled", {"mode": "run", "pause": 100, "items": []})

    # Then the wait lasted about 1 s and the retries about 0.9 s
    assert execution["status"] == "SUCCEEDED"
    (wait_entered,) = events_of(execution, "WaitStateEntered")
    (wait_exited,) = events_of(execution, "WaitStateExited")
    waited = (wait_exited["timestamp"] - wait_entered["timestamp"]).total_seconds()
    assert waited == pytest.approx(1.0, abs=0.5)
    first_failure = events_of(execution, "TaskFailed")[0]
    last_attempt = events_of(execution, "TaskScheduled")[-1]
    retried_after = (last_attempt["timestamp"] - first_failure["timestamp"]).total_seconds()
    assert retried_after == pytest.approx(0.9, abs=0.5)
