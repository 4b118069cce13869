"""The end steps (ReportToCi, RecordFailure) put one end event per job attempt on the bus, whatever
Step Functions repeats; a bus that refuses it leaves the job's end as it was and says why."""

from __future__ import annotations

import json
import os
from typing import Any

import boto3
import pytest

from testrelay.aws.ledger import Ledger
from testrelay.models.ci_event import CiEvent
from testrelay.models.job import Job
from testrelay.routing import load_routes
from testrelay_local.functions import load_handler
from tests.integration.handlers.conftest import Stack, stack  # noqa: F401 (the moto fixture)
from tests.support import FakeLambdaContext

report_to_ci = load_handler("functions/report_to_ci")
record_failure = load_handler("functions/record_failure")
RUN = {"run_id": 1001, "url": "https://app.testsigma.com/ui/td/runs/1001", "triggered_at": 1.0, "plan_id": 2741}
OUTCOME = {"target": "patient-portal", "kind": "testsigma_tm", "status": "written", "written": 6, "run_id": "tm-1"}


@pytest.fixture
def observed(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> str:  # noqa: F811
    """The stack's bus, with a rule that copies every testrelay event to a queue."""
    events, sqs = boto3.client("events"), boto3.client("sqs")
    events.create_event_bus(Name="testrelay-bus")
    url = sqs.create_queue(QueueName="observer")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventBusName="testrelay-bus", EventPattern=json.dumps({"source": ["testrelay"]}))
    events.put_targets(Rule="all", EventBusName="testrelay-bus", Targets=[{"Id": "q", "Arn": arn}])
    monkeypatch.setenv("EVENT_BUS_NAME", "testrelay-bus")
    return url


def _job() -> Job:
    route = load_routes(os.environ["ROUTES_FILE"]).route("octo-smoke")
    event = CiEvent(provider="eventbridge", event="Test Run Requested", delivery_key="acct:k-1", repository="acme/shop")
    job = Job.for_event(event, route.action())
    Ledger("ledger").record_job(job)
    return job


def _events(queue_url: str) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    found = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages") or []
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _report(job: Job) -> dict[str, Any]:
    event = {
        "job": job.model_dump(mode="json"),
        "run": RUN,
        "results": {"counts": {"total": 6, "passed": 6}},
        "writeback": [OUTCOME],
    }
    answer: dict[str, Any] = report_to_ci(event, FakeLambdaContext())
    return answer


def test_a_repeated_report_step_announces_the_end_once(observed: str) -> None:
    job = _job()
    # When ReportToCi runs, and Step Functions runs it again (a retried or re-driven step)
    _report(job)
    _report(job)
    # Then one "Test Run Finished" is on the bus
    [event] = _events(observed)
    assert event["detail-type"] == "Test Run Finished"
    detail = event["detail"]
    assert (detail["job_id"], detail["attempt"], detail["state"], detail["outcome"]) == (
        job.id,
        1,
        "reported",
        "success",
    )
    assert detail["testsigma"] == {"run_id": 1001, "run_url": RUN["url"]}
    assert detail["counts"]["passed"] == 6
    assert detail["targets"][0]["status"] == "written"


def test_a_timed_out_job_is_announced_as_timed_out_once(observed: str) -> None:
    job = _job()
    failure = {
        "job": job.model_dump(mode="json"),
        "run": RUN,
        "error": {"Error": "DeadlineExceeded", "Cause": "Testsigma run 1001 did not finish"},
    }
    record_failure(failure, FakeLambdaContext())
    record_failure(failure, FakeLambdaContext())
    [event] = _events(observed)
    assert event["detail-type"] == "Test Run Timed Out"
    assert event["detail"]["reason"].startswith("DeadlineExceeded")


def test_a_retried_job_announces_its_new_end(observed: str) -> None:
    job = _job()
    _report(job)
    # Given the job retried as attempt 2 (`testrelay retry`)
    Ledger("ledger").update_job(job.id, attempt=2)
    # When attempt 2 ends
    _report(job)
    # Then each attempt's end was announced once, with its own event id
    assert [e["detail"]["event_id"] for e in _events(observed)] == [f"{job.id}#a1", f"{job.id}#a2"]


def test_a_bus_that_refuses_leaves_the_job_reported_and_says_why(
    stack: Stack,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a bus name that does not exist
    monkeypatch.setenv("EVENT_BUS_NAME", "no-such-bus")
    job = _job()
    # When the job ends
    answer = _report(job)
    # Then its end is what it was, and the record keeps why nothing was announced
    assert answer["job_state"] == "reported"
    record = Ledger("ledger").get_job(job.id)
    assert record is not None
    assert record["state"] == "reported"
    assert "PutEvents" in record["end_event_error"]
