"""The observability module as a handler meets it: job keys on every line of an invocation and not of
the next one, trace annotations when tracing is on, EMF metrics whose dimensions never hold a job id,
and a webhook cold path without the X-Ray SDK."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testrelay import observability
from testrelay.observability import SERVICE, emit, lambda_entry, logger
from tests.support import FakeLambdaContext, demo_job

ROOT = Path(__file__).resolve().parents[2]


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(logger.registered_formatter)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines() -> Iterator[_Lines]:
    capture = _Lines()
    logging.getLogger(SERVICE).addHandler(capture)
    level = logger.log_level
    logger.setLevel("INFO")
    yield capture
    logger.setLevel(level)
    logging.getLogger(SERVICE).removeHandler(capture)


class _Tracer:
    def __init__(self) -> None:
        self.annotations: dict[str, str] = {}

    def put_annotation(self, key: str, value: str) -> None:
        self.annotations[key] = value

    def capture_lambda_handler(self, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        return handler


def test_a_tasks_lines_and_trace_name_its_job_and_the_next_invocation_starts_clean(
    lines: _Lines, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a task handler in Lambda with tracing on
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "TriggerPlanFunction")
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    tracer = _Tracer()
    monkeypatch.setattr(observability, "tracer", lambda: tracer)

    @lambda_entry
    def handler(event: dict[str, Any], context: Any) -> None:
        logger.info("working")

    job = demo_job()
    # When it runs for a job, then (warm) for an event that names none
    handler({"job": job.model_dump(mode="json")}, FakeLambdaContext())
    handler({}, FakeLambdaContext())
    # Then the job's line carries its id, route and delivery, the trace its id and route
    first, second = (line for line in lines.lines if line["message"] == "working")
    assert (first["job_id"], first["route"], first["delivery"]) == (job.id, job.route.name, job.event.delivery_key)
    assert tracer.annotations == {"job_id": job.id, "route": job.route.name}
    # And the next invocation's lines do not carry the previous job's keys
    assert not {"job_id", "route", "delivery"} & set(second)


def test_a_retry_request_is_correlated_with_the_job_it_runs_again() -> None:
    assert observability.job_keys_of({"retry_of": "octo-checkout-abc", "attempt": 2}) == {"job_id": "octo-checkout-abc"}
    assert observability.job_keys_of("not a job") == {}
    assert observability.job_keys_of({"id": 3, "route": "x"}) == {}


def test_metrics_are_emf_with_bounded_dimensions_and_the_job_id_as_a_key(capsys: pytest.CaptureFixture[str]) -> None:
    # When a metric of a job is emitted with the alarm's rollup
    emit("VendorThrottles", 1, {"vendor": "browserstack-tm"}, rollup=True, job_id="octo-checkout-abc")
    [record] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    # Then it is one EMF record: per vendor, and with `service` alone; the job id is a key, not a dimension
    [directive] = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "TestRelay"
    assert sorted(map(sorted, directive["Dimensions"])) == [["service"], ["service", "vendor"]]
    assert (record["VendorThrottles"], record["job_id"], record["vendor"]) == (
        [1.0],
        "octo-checkout-abc",
        "browserstack-tm",
    )
    assert all("job_id" not in dimensions for dimensions in directive["Dimensions"])


def test_the_webhook_cold_path_imports_no_xray_sdk_no_requests_and_no_event_handler() -> None:
    # Given the webhook's environment (template.yaml: tracing of the SDK off)
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(ROOT / 'layers/core')!r}, {str(ROOT / 'functions/webhook')!r}]\n"
        "import app\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'aws_xray_sdk', 'requests', 'wrapt'}),"
        " 'aws_lambda_powertools.event_handler' in sys.modules, 'testrelay.junit' in sys.modules)\n"
    )
    env = {"AWS_LAMBDA_FUNCTION_NAME": "WebhookFunction", "POWERTOOLS_TRACE_DISABLED": "true", "PATH": "/usr/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)  # noqa: S603
    # When its module is imported, then none of them is
    assert done.stdout.strip() == "[] False False"
