"""LocalAws leaves nothing behind: environment, moto state, server, executions."""

from __future__ import annotations

import json
import os
import socket
import time
from urllib.parse import urlsplit

import pytest
from moto.core.config import default_user_config

from testrelay_local.local_aws import LocalAws


def test_start_points_the_process_at_moto_and_stop_puts_the_environment_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a process configured for a real account, with an endpoint override for one service
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAREALKEY")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "https://sqs.example.com")
    monkeypatch.delenv("MOTO_PORT", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)

    # When LocalAws runs
    with LocalAws(time_scale=0.0) as aws:
        running = dict(os.environ)
        endpoint = aws.endpoint_url

    # Then, while it ran, boto3 was pointed at moto with dummy credentials only
    assert running["AWS_ENDPOINT_URL"] == endpoint
    assert running["MOTO_PORT"] == str(urlsplit(endpoint).port)
    assert running["AWS_ACCESS_KEY_ID"] == "testing"
    assert running["AWS_DEFAULT_REGION"] == "us-east-1"
    assert "AWS_PROFILE" not in running
    assert "AWS_ENDPOINT_URL_SQS" not in running
    # And afterwards the environment, moto's configuration and the port are as before
    assert os.environ["AWS_PROFILE"] == "production"
    assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIAREALKEY"
    assert os.environ["AWS_ENDPOINT_URL_SQS"] == "https://sqs.example.com"
    assert "MOTO_PORT" not in os.environ
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert default_user_config["stepfunctions"] == {"execute_state_machine": False}
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", urlsplit(endpoint).port), 1):
        pass


def test_moto_state_does_not_survive_a_restart() -> None:
    # Given a queue created in one LocalAws
    with LocalAws(time_scale=0.0) as first:
        first.client("sqs").create_queue(QueueName="left-over")

    # When another one starts
    with LocalAws(time_scale=0.0) as second:
        queues = second.client("sqs").list_queues().get("QueueUrls", [])

    # Then it starts empty
    assert queues == []


def test_stop_ends_running_executions_at_once() -> None:
    # Given an execution waiting for an hour at real time scale
    with LocalAws(time_scale=1.0) as aws:
        sfn = aws.client("stepfunctions")
        definition = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 3600, "End": True}}}
        machine = sfn.create_state_machine(
            name="holder", definition=json.dumps(definition), roleArn=aws.execution_role_arn
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, name="long-wait")["executionArn"]
        assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"

        # When LocalAws stops
        started = time.monotonic()
        aws.stop()

        # Then it did not wait for the hour
        assert time.monotonic() - started < 5


def test_only_one_local_aws_runs_per_process(local_aws: LocalAws) -> None:
    # Given a running LocalAws (moto's backends are process-wide)
    # When a second one starts
    # Then it is refused, and the first keeps working
    with pytest.raises(RuntimeError, match="already running"):
        LocalAws().start()
    assert local_aws.client("sqs").list_queues().get("QueueUrls", []) == []
