"""Property-based fuzzing of the EventBridge entry point (BusEventsFunction's real handler) with
moto's SQS and DynamoDB: whatever an event holds (the published CodeBuild / CodePipeline samples
and request details broken the ways real events break: other JSON types, lone surrogates, huge
numbers, deep nesting, missing fields), the handler answers `accepted`, `ignored` or `parked` and
never raises; a parked event is in the events DLQ with its reason. Bounded (`max_examples`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testrelay_local.functions import load_handler
from tests.integration.handlers.conftest import Stack, stack  # noqa: F401 (the moto fixture)
from tests.support import EVENTS, FakeLambdaContext

handler = load_handler("functions/bus_events")

ROUTES = """
version: 1
routes:
  - name: everything
    match: {outcomes: ["*"], forks: true, child_pipelines: true}
    testsigma: {test_plan_id: 1}
"""
FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
SAMPLES = [
    json.loads(path.read_text())
    for folder in ("codebuild", "codepipeline")
    for path in sorted((EVENTS / folder).glob("*.json"))
] + [json.loads((EVENTS / "functions" / "bus_events.json").read_text())]
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.just("\ud800"),
    st.just("x" * 5000),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@pytest.fixture
def bus(stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:  # noqa: F811
    dlq = boto3.client("sqs").create_queue(QueueName="events-dlq")["QueueUrl"]
    routes = tmp_path / "bus-routes.yaml"
    routes.write_text(ROUTES)
    monkeypatch.setenv("EVENTS_DLQ_URL", dlq)
    monkeypatch.setenv("ROUTES_FILE", str(routes))
    return dlq


def _paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    return found


def _replace(event: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    broken = json.loads(json.dumps(event))
    current = broken
    for key in path[:-1]:
        current = current[key]
    current[path[-1]] = value
    return broken


@st.composite
def broken_events(draw: st.DrawFn) -> Any:
    sample = draw(st.sampled_from(SAMPLES))
    kind = draw(st.sampled_from(["replace", "delete", "nest", "other"]))
    if kind == "other":
        return draw(st.one_of(ODD_VALUES, st.recursive(ODD_VALUES, lambda inner: st.lists(inner, max_size=3))))
    path = draw(st.sampled_from(_paths(sample)))
    if kind == "delete":
        broken = json.loads(json.dumps(sample))
        current = broken
        for key in path[:-1]:
            current = current[key]
        del current[path[-1]]
        return broken
    if kind == "nest":
        deep: Any = 1
        for _ in range(draw(st.sampled_from([10, 5000]))):
            deep = [deep]
        return _replace(sample, path, deep)
    return _replace(sample, path, draw(ODD_VALUES))


@FUZZ
@given(event=broken_events())
def test_no_event_makes_the_handler_raise(bus: str, event: Any) -> None:
    # When EventBridge delivers whatever it holds
    answer = handler(event, FakeLambdaContext())
    # Then the handler says what became of it, and a parked event rests in the DLQ with its reason
    assert answer["status"] in {"accepted", "ignored", "parked"}
    if answer["status"] == "parked":
        assert answer["reason"]
        messages = boto3.client("sqs").receive_message(QueueUrl=bus, MessageAttributeNames=["All"])["Messages"]
        assert messages[-1]["MessageAttributes"]["failure_reason"]["StringValue"]
        for message in messages:
            boto3.client("sqs").delete_message(QueueUrl=bus, ReceiptHandle=message["ReceiptHandle"])


VALID_DETAIL = {
    "route": st.just("everything"),
    "idempotency_key": st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=300
    ),
    "sha": st.from_regex(r"[0-9a-f]{7,64}", fullmatch=True),
    "repository": st.text(max_size=20),
    "testsigma_run_id": st.integers(min_value=-5, max_value=2**64),
}


@FUZZ
@given(
    valid=st.fixed_dictionaries({}, optional=VALID_DETAIL),
    odd=st.dictionaries(
        st.sampled_from([*VALID_DETAIL, "branch", "run_url", "name", "schema_version", "extra"]), ODD_VALUES, max_size=3
    ),
)
def test_any_request_detail_is_accepted_or_parked(bus: str, valid: dict[str, Any], odd: dict[str, Any]) -> None:
    detail = {**valid, **odd}
    event = {"source": "acme", "detail-type": "Test Run Requested", "account": "123456789012", "detail": detail}
    answer = handler(event, FakeLambdaContext())
    assert answer["status"] in {"accepted", "parked"}
    if answer["status"] == "accepted":
        [job_id] = answer["jobs"]
        assert job_id.startswith("everything-")
