"""What an operator finds in the logs of a deployed stack, read from the Powertools JSON lines a job
through the local runtime writes: every line of a job names it (job_id, route, delivery), the vendor
client's retries included, and a message that keeps failing leaves ERROR lines with its reason on its
way to the DLQ, which it reaches in seconds because the visibility timeout is time-scaled."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from testrelay.observability import SERVICE, logger
from testrelay.settings import get_settings
from testrelay_local.runtime import LocalRuntime
from testrelay_local.signing import github_headers
from testrelay_local.sqs_poller import scaled_visibility
from tests.support import demo_job, github_fixture, wait_for_execution

PAYLOAD = github_fixture("workflow_run.completed.payload.json")


class _JsonLines(logging.Handler):
    """The relay's log lines exactly as Powertools formats them for CloudWatch, decoded."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logger.registered_formatter)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def log_lines(runtime: LocalRuntime) -> Iterator[_JsonLines]:
    capture = _JsonLines()
    relay_logger = logging.getLogger(SERVICE)
    relay_logger.addHandler(capture)
    logger.setLevel("INFO")
    yield capture
    logger.setLevel("WARNING")
    relay_logger.removeHandler(capture)


def test_every_line_of_a_job_names_the_job_its_route_and_its_delivery(
    runtime: LocalRuntime, log_lines: _JsonLines
) -> None:
    # Given Testsigma failing the first status read once (the client retries it within the call)
    assert runtime.sandbox is not None
    runtime.sandbox.set_faults(
        rules=[
            {
                "vendor": "testsigma",
                "method": "GET",
                "path": r"/execution_results/\d+$",
                "kind": "server_error",
                "times": 1,
            }
        ]
    )
    delivery = str(uuid.uuid4())
    headers = github_headers(runtime.webhook_secret, PAYLOAD, "workflow_run", delivery)
    # When GitHub's delivery goes through the whole relay
    answer = requests.post(runtime.webhook_url("github"), data=PAYLOAD, headers=headers, timeout=10)
    [job_id] = answer.json()["jobs"]
    assert wait_for_execution(runtime, job_id)["status"] == "SUCCEEDED"
    # Then each step's lines carry the job's keys: intake, dispatch, trigger, the retried vendor call,
    # collection, write-back and the end of the job
    keys = {"job_id": job_id, "route": "octo-checkout", "delivery": delivery}
    by_message = {line["message"]: line for line in log_lines.lines}
    for message in (
        "jobs enqueued",
        "job dispatched",
        "testsigma run started",
        "vendor call retried",
        "case results collected",
        "results written",
        "job finished",
    ):
        assert message in by_message, f"no {message!r} line: {sorted(by_message)}"
        line = by_message[message]
        assert {key: line.get(key) for key in keys} == keys, line
    assert by_message["vendor call retried"]["vendor"] == "testsigma"
    # And no line names another job, nor is a line of this job left without its route
    named = [line for line in log_lines.lines if "job_id" in line]
    assert {line["job_id"] for line in named} == {job_id}
    assert all(line.get("route") == "octo-checkout" for line in named)


@pytest.fixture
def unstartable(runtime: LocalRuntime) -> Iterator[None]:
    """Dispatch pointed at a state machine that does not exist: every delivery of a job fails."""
    arn = os.environ["STATE_MACHINE_ARN"]
    os.environ["STATE_MACHINE_ARN"] = arn + "-missing"
    get_settings.cache_clear()
    yield
    os.environ["STATE_MACHINE_ARN"] = arn
    get_settings.cache_clear()


def test_a_message_that_keeps_failing_logs_why_and_reaches_the_dlq_in_seconds(
    runtime: LocalRuntime, log_lines: _JsonLines, unstartable: None
) -> None:
    # Given the queue's 200 s visibility timeout (template.yaml), scaled with the runtime's time
    sqs = runtime.aws.client("sqs")
    queue = runtime.outputs["JobsQueueUrl"]
    configured = int(
        sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]["VisibilityTimeout"]
    )
    assert configured == 200
    # When a job the dispatcher cannot start is queued
    job = demo_job()
    sqs.send_message(QueueUrl=queue, MessageBody=job.model_dump_json())
    started = time.monotonic()
    dlq = runtime.outputs["JobsDlqUrl"]
    while time.monotonic() - started < 120:
        waiting = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])
        if waiting["Attributes"]["ApproximateNumberOfMessages"] == "1":
            break
        time.sleep(0.5)
    # Then after its five receives it rests in the DLQ, seconds later instead of 5 x 200 s
    assert waiting["Attributes"]["ApproximateNumberOfMessages"] == "1"
    assert time.monotonic() - started < 120
    # And every failed delivery left an ERROR line saying why, naming the job and its receive count
    failures = [line for line in log_lines.lines if line["message"].startswith("record failed")]
    assert len(failures) >= 5
    for line in failures:
        assert line["level"] == "ERROR"
        assert (line["job_id"], line["route"]) == (job.id, "octo-checkout")
        assert "StateMachineDoesNotExist" in line["reason"] or "does not exist" in line["reason"], line
    assert sorted(int(line["receive_count"]) for line in failures)[:5] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    ("time_scale", "seconds"),
    [(1.0, 200), (0.01, 2), (0.0, 1), (0.001, 1), (0.5, 100)],
)
def test_the_local_visibility_timeout_follows_the_time_scale(time_scale: float, seconds: int) -> None:
    # The CLI's default time scale (0.01) gives 2 s: a poison message reaches the DLQ in about 10 s
    assert scaled_visibility(200, time_scale) == seconds
