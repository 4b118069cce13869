"""CiEvent checks itself without pydantic (the webhook's cold path); it must answer as the pydantic
model it replaced did, for any value a normaliser or a queued job can hand it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from testrelay.models.bus_events import Text, Url
from testrelay.models.ci_event import MAX_INT, MAX_TEXT, MAX_URL, CiEvent, InvalidEvent
from testrelay.models.job import Job
from testrelay.models.job_message import job_message
from testrelay_local.samples import demo_job


class ReferenceEvent(BaseModel):
    """The pydantic model CiEvent was until the webhook's cold path dropped pydantic (same rules; its
    Text and Url types live on in the bus events' model)."""

    model_config = ConfigDict(frozen=True)

    provider: Text
    event: Text
    delivery_key: Url = Field(min_length=1)
    repository: Text = Field(min_length=1)
    branch: Text | None = None
    tag: Text | None = None
    pull_request: Text | None = None
    fork: bool = False
    head_repository: Text | None = None
    child_pipeline: bool = False
    commit_sha: Text | None = None
    pipeline_id: Text | None = None
    pipeline_name: Text = ""
    run_number: int | None = Field(default=None, ge=-MAX_INT, le=MAX_INT)
    run_url: Url | None = None
    outcome: Text | None = None
    testsigma_run_id: int | None = Field(default=None, gt=0, le=MAX_INT)


TEXTS = st.one_of(
    st.text(max_size=20),
    st.text(alphabet="ab", min_size=MAX_TEXT - 1, max_size=MAX_TEXT + 1),
    st.text(alphabet="ab", min_size=MAX_URL - 1, max_size=MAX_URL + 1),
    st.sampled_from(["", "main", "\ud800", "a\udfffb"]),
    st.integers(-5, 5),
    st.booleans(),
    st.floats(allow_nan=True),
    st.lists(st.text(max_size=3), max_size=2),
    st.none(),
)
INTEGERS = st.one_of(
    st.integers(),
    st.integers(-MAX_INT - 2, -MAX_INT + 2),
    st.integers(MAX_INT - 2, MAX_INT + 2),
    st.floats(allow_nan=True, allow_infinity=True),
    st.builds(
        lambda sign, digits, pad: f"{pad}{sign}{digits}{pad}",
        st.sampled_from(["", "+", "-"]),
        st.from_regex(r"\A[0-9]{1,25}(_[0-9]{1,3})?\Z"),
        st.sampled_from(["", " ", "\t", "\n "]),
    ),
    st.sampled_from(["", "1e3", "0x10", "4.0", "٣", "1__0", "_1"]),
    st.booleans(),
    st.none(),
    st.text(max_size=4),
)
FLAGS = st.one_of(
    st.booleans(),
    st.integers(-1, 2),
    st.sampled_from([0.0, 1.0, 0.5]),
    st.sampled_from(["true", "FALSE", "yes", "No", "on", "off", "t", "f", "y", "n", "1", "0", "", "maybe", " true"]),
    st.none(),
)
FIELDS = {
    name: INTEGERS if name in ("run_number", "testsigma_run_id") else TEXTS for name in ReferenceEvent.model_fields
}
FIELDS["fork"] = FIELDS["child_pipeline"] = FLAGS
REQUIRED = ("provider", "event", "delivery_key", "repository")


@st.composite
def field_values(draw: st.DrawFn) -> dict[str, Any]:
    values = {name: draw(FIELDS[name]) for name in REQUIRED}
    for name in ReferenceEvent.model_fields:
        if name not in REQUIRED and draw(st.booleans()):
            values[name] = draw(FIELDS[name])
    return values


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field_values())
def test_the_event_accepts_and_refuses_what_the_pydantic_model_did(values: dict[str, Any]) -> None:
    # Given any values for the fields, When both build an event
    try:
        reference = ReferenceEvent(**values)
    except ValidationError as exc:
        refused = {str(error["loc"][0]) for error in exc.errors()}
        # Then a refusal names the same fields
        with pytest.raises(InvalidEvent) as raised:
            CiEvent(**values)
        assert {name for name, _ in raised.value.problems} == refused
        return
    # Then an accepted event holds the same normalised values
    assert CiEvent(**values).as_json() == reference.model_dump()


def test_a_refusal_names_fields_and_rules_never_values() -> None:
    with pytest.raises(InvalidEvent) as raised:
        CiEvent(provider="github", event="e", delivery_key="", repository="r" * 2000, run_number="secret-ish")
    message = str(raised.value)
    assert "delivery_key: String should have at least 1 character" in message
    assert f"repository: String should have at most {MAX_TEXT} characters" in message
    assert "run_number: Input should be a valid integer" in message
    assert "secret-ish" not in message


@settings(max_examples=200, deadline=None)
@given(field_values())
def test_a_queued_job_message_validates_into_the_job_the_model_makes(values: dict[str, Any]) -> None:
    # Given an event the webhook accepted and a route
    try:
        event = CiEvent(**values)
    except InvalidEvent:
        return
    route = demo_job().route
    # When the webhook serialises the job without the model, and the dispatcher reads it
    message = job_message(event, route.name, route.model_dump(mode="json"))
    queued = Job.model_validate_json(message.body)
    # Then it is the job Job.for_event makes, id, kind and event included
    expected = Job.for_event(event, route)
    assert queued.model_dump(exclude={"created_at"}) == expected.model_dump(exclude={"created_at"})
    assert (message.id, message.kind) == (expected.id, expected.kind)
    assert json.loads(message.body)["event"] == event.as_json()
