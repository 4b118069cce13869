"""events/functions/*.json are the inputs `sam local invoke -e` would use: they must stay valid."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from pydantic import TypeAdapter

from testrelay.ci.base import WebhookCredential
from testrelay.ci.github import GitHubProvider
from testrelay.models.ci_event import CiEvent
from testrelay.models.execution import RunRef
from testrelay.models.job import Job
from testrelay.models.routes import Target
from testrelay.routing import load_routes
from tests.support import EVENTS, ROOT


def _event(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / "functions" / name).read_text())
    return loaded


def test_there_is_a_sample_event_for_every_function() -> None:
    functions = sorted(path.name for path in (ROOT / "functions").iterdir() if (path / "app.py").exists())
    samples = sorted(path.stem for path in (EVENTS / "functions").glob("*.json"))
    assert samples == functions


def test_the_webhook_sample_is_a_signed_github_delivery() -> None:
    event = _event("webhook.json")
    body = event["body"].encode() if not event["isBase64Encoded"] else base64.b64decode(event["body"])
    provider = GitHubProvider()
    provider.authenticate(event["headers"], body, WebhookCredential(secret="test-secret-placeholder"))
    assert isinstance(provider.parse(event["headers"], body), CiEvent)


def test_the_dispatch_sample_carries_a_job() -> None:
    [record] = _event("dispatch.json")["Records"]
    assert Job.model_validate_json(record["body"]).route.name == "octo-checkout"


def test_the_schedule_sample_names_a_schedule_of_the_routes_file() -> None:
    event = _event("schedule.json")
    assert load_routes(ROOT / "config" / "routes.yaml").schedule(event["schedule"]).route == "octo-checkout"


@pytest.mark.parametrize(
    "name",
    ["trigger_plan", "poll_status", "gather_shards", "collect_results", "write_back", "report_to_ci", "record_failure"],
)
def test_task_samples_hold_what_the_state_machine_passes(name: str) -> None:
    event = _event(f"{name}.json")
    Job.model_validate(event["job"])
    if "run" in event:
        RunRef.model_validate(event["run"])
    if "target" in event:
        TypeAdapter(Target).validate_python(event["target"])
