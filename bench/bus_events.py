"""What EventBridge in and out cost the relay (in-process, moto for SQS, DynamoDB and EventBridge).

Prints, warm, per event: BusEventsFunction for a `Test Run Requested` event and for the CodeBuild
sample, against the baseline of enqueueing the same job alone (`send_jobs`), measured in the same
run; and the end announcement a job's last step adds (`announce_end`: two ledger reads, PutEvents,
one conditional write) against the ledger update that step already makes (`update_job`).

Run: .venv/bin/python bench/bus_events.py [--events N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[1]
ROUTES = """
version: 1
routes:
  - name: bench
    match: {providers: [codebuild, eventbridge], outcomes: ["*"]}
    testsigma: {test_plan_id: 1}
"""


class _Context:
    function_name = "BusEventsFunction"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:BusEventsFunction"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 15_000


def _timed(count: int, call: Callable[[int], Any]) -> dict[str, float]:
    call(-1)  # warm: imports, clients, the routes file
    samples = []
    for index in range(count):
        started = time.perf_counter()
        call(index)
        samples.append(time.perf_counter() - started)
    ordered = sorted(samples)
    return {"p50": statistics.median(ordered) * 1000, "p95": ordered[int(len(ordered) * 0.95) - 1] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=300)
    count = parser.parse_args().events
    routes = ROOT / ".bench-bus-routes.yaml"
    routes.write_text(ROUTES)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",
        ROUTES_FILE=str(routes),
        LEDGER_TABLE="ledger",
        EVENT_BUS_NAME="bench-bus",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        # The handlers' metric flushes print EMF lines on stdout; only the table is wanted there.
        with mock_aws(), contextlib.redirect_stdout(io.StringIO()):
            rows = _measure(count)
        print(f"{count} events each, warm, in-process moto")
        print(f"{'':32} {'p50 ms':>8} {'p95 ms':>8} {'p50 / baseline':>15}")
        for name, figures, base in rows:
            print(f"{name:32} {figures['p50']:8.2f} {figures['p95']:8.2f} {figures['p50'] / base['p50']:15.2f}")
    finally:
        routes.unlink(missing_ok=True)


Row = tuple[str, dict[str, float], dict[str, float]]


def _measure(count: int) -> list[Row]:
    from testrelay.aws.ledger import Ledger
    from testrelay.aws.queue import send_jobs
    from testrelay.models.ci_event import CiEvent
    from testrelay.models.job import Job
    from testrelay.relay.end_events import announce_end
    from testrelay.routing import load_routes
    from testrelay_local.functions import load_handler

    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    os.environ["JOBS_QUEUE_URL"] = queue
    os.environ["EVENTS_DLQ_URL"] = sqs.create_queue(QueueName="events-dlq")["QueueUrl"]
    boto3.client("dynamodb").create_table(
        TableName="ledger",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    boto3.client("events").create_event_bus(Name="bench-bus")
    handler = load_handler("functions/bus_events")
    route = load_routes(os.environ["ROUTES_FILE"]).route("bench").action()
    codebuild = json.loads(
        (ROOT / "events" / "codebuild" / "build-state-change.github-branch.variant.json").read_text()
    )

    def request(index: int) -> None:
        detail = {"route": "bench", "idempotency_key": f"k-{index}"}
        handler({"source": "bench", "detail-type": "Test Run Requested", "account": "1", "detail": detail}, _Context())

    builds = []
    for index in range(-1, count):
        event = json.loads(json.dumps(codebuild))
        event["detail"]["build-id"] += f"-{index}"
        builds.append(event)

    def build(index: int) -> None:
        handler(builds[index + 1], _Context())

    def enqueue(index: int) -> None:
        event = CiEvent(provider="eventbridge", event="e", delivery_key=f"b-{index}", repository="r")
        send_jobs(queue, [Job.for_event(event, route)])

    ledger = Ledger("ledger")
    jobs = [
        Job.for_event(CiEvent(provider="eventbridge", event="e", delivery_key=f"end-{i}", repository="r"), route)
        for i in range(-1, count)
    ]
    for job in jobs:
        ledger.record_job(job)
    run = {"run_id": 1, "url": "https://app.testsigma.com/ui/td/runs/1"}
    target = [{"target": "t", "kind": "testsigma_tm", "status": "written", "written": 6}]

    def update(index: int) -> None:
        ledger.update_job(jobs[index + 1].id, state="reported", summary="6 passed")

    def announce(index: int) -> None:
        announce_end(jobs[index + 1], "reported", outcome="success", run=run, counts={"total": 6}, targets=target)

    baseline = _timed(count, enqueue)
    rows: list[Row] = [
        ("send_jobs alone (baseline)", baseline, baseline),
        ("Test Run Requested -> job", _timed(count, request), baseline),
        ("CodeBuild build -> job", _timed(count, build), baseline),
    ]
    ledger_baseline = _timed(count, update)
    rows += [
        ("ledger update_job (baseline)", ledger_baseline, ledger_baseline),
        ("announce_end (end event)", _timed(count, announce), ledger_baseline),
    ]
    return rows


if __name__ == "__main__":
    main()
