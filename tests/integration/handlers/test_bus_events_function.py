"""BusEventsFunction with moto's SQS: what a request becomes on the jobs queue, and what is parked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest

from testrelay_local.functions import load_handler
from tests.integration.handlers.conftest import Stack, stack  # noqa: F401 (the moto fixture)
from tests.support import FakeLambdaContext

handler = load_handler("functions/bus_events")


@pytest.fixture
def dlq(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:  # noqa: F811
    url = str(boto3.client("sqs").create_queue(QueueName="events-dlq")["QueueUrl"])
    monkeypatch.setenv("EVENTS_DLQ_URL", url)
    return url


def _request(source: str = "acme.deployer", account: str = "111122223333", **detail: Any) -> dict[str, Any]:
    event = {"source": source, "detail-type": "Test Run Requested", "account": account, "detail": detail}
    answer: dict[str, Any] = handler(event, FakeLambdaContext())
    return answer


def test_a_request_naming_a_testsigma_run_queues_a_result_sync(stack: Stack, dlq: str) -> None:  # noqa: F811
    answer = _request(route="octo-checkout", idempotency_key="sync-9", testsigma_run_id=4711, sha="ABCDEF1")
    [job] = stack.queued()
    assert answer == {"status": "accepted", "jobs": [job["id"]]}
    assert (job["kind"], job["testsigma_run_id"], job["event"]["commit_sha"]) == ("result_sync", 4711, "abcdef1")
    assert job["event"]["provider"] == "eventbridge"


def test_the_same_key_names_the_same_job_and_another_account_another(dlq: str) -> None:
    first = _request(route="octo-checkout", idempotency_key="k")["jobs"]
    assert _request(route="octo-checkout", idempotency_key="k")["jobs"] == first
    assert _request(route="octo-checkout", idempotency_key="k", account="444455556666")["jobs"] != first


def test_a_request_from_an_aws_source_is_parked(stack: Stack, dlq: str) -> None:  # noqa: F811
    answer = _request(source="aws.codebuild", route="octo-checkout", idempotency_key="k")
    assert answer["status"] == "parked"
    [message] = boto3.client("sqs").receive_message(QueueUrl=dlq, MessageAttributeNames=["All"])["Messages"]
    assert (
        "no contract for events of source 'aws.codebuild'"
        in message["MessageAttributes"]["failure_reason"]["StringValue"]
    )
    assert stack.queued() == []
