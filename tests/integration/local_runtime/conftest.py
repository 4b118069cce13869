"""Fixtures for the local AWS runtime's own tests: a fresh moto server per test, at time scale 0."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from testrelay_local.local_aws import LocalAws

# Generous: an execution here takes well under a second; only a hang should reach it.
EXECUTION_TIMEOUT_SECONDS = 20.0


@pytest.fixture
def local_aws() -> Iterator[LocalAws]:
    with LocalAws(time_scale=0.0) as aws:
        yield aws


@pytest.fixture
def run_execution(local_aws: LocalAws) -> Callable[[str, str, dict[str, Any]], dict[str, Any]]:
    """Starts an execution by name, polls it to its end; returns describe_execution plus "events"."""
    sfn = local_aws.client("stepfunctions")

    def run(state_machine_arn: str, name: str, execution_input: dict[str, Any]) -> dict[str, Any]:
        execution_arn = sfn.start_execution(
            stateMachineArn=state_machine_arn, name=name, input=json.dumps(execution_input)
        )["executionArn"]
        deadline = time.monotonic() + EXECUTION_TIMEOUT_SECONDS
        while (described := sfn.describe_execution(executionArn=execution_arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline, f"execution {name} still running"
            time.sleep(0.02)
        events: list[dict[str, Any]] = []
        for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
            events.extend(page["events"])
        return {**described, "events": events}

    return run
