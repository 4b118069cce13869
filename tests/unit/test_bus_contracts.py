"""The README's event contracts are the code's: its request example validates, its end event example
has exactly the fields the relay puts, and the published sample for BusEventsFunction is a request."""

from __future__ import annotations

import json
import re
from typing import Any

from testrelay.models.bus_events import REQUEST_DETAIL_TYPE, TestRunRequest
from testrelay.models.ci_event import CiEvent
from testrelay.models.job import Job
from testrelay.relay.end_events import end_detail
from testrelay.routing import load_routes
from tests.support import EVENTS, ROOT

SECTION = (ROOT / "README.md").read_text().split("## Event-driven automation")[1].split("\n## ")[0]


def _json_blocks() -> list[dict[str, Any]]:
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)```", SECTION, re.S)]


def test_the_readme_request_example_validates() -> None:
    request = next(block for block in _json_blocks() if block.get("DetailType") == REQUEST_DETAIL_TYPE)
    detail = TestRunRequest.model_validate(json.loads(request["Detail"]))
    assert load_routes(ROOT / "config" / "routes.yaml").route(detail.route)


def test_the_readme_end_event_has_the_fields_the_relay_puts() -> None:
    documented = next(block for block in _json_blocks() if block.get("source") == "testrelay")["detail"]
    route = load_routes(ROOT / "config" / "routes.yaml").route("octo-checkout")
    job = Job.for_event(
        CiEvent(provider="github", event="workflow_run", delivery_key="d", repository="r"), route.action()
    )
    target = {"target": "t", "kind": "testsigma_tm", "status": "written"}
    put = end_detail(job, 1, "reported", "success", {"run_id": 1, "url": "u"}, {"total": 0}, [target], None)
    assert documented.keys() == put.keys()
    assert documented["origin"].keys() == put["origin"].keys()
    assert documented["targets"][0].keys() == put["targets"][0].keys()


def test_the_function_sample_is_a_valid_request() -> None:
    sample = json.loads((EVENTS / "functions" / "bus_events.json").read_text())
    assert sample["detail-type"] == REQUEST_DETAIL_TYPE
    TestRunRequest.model_validate(sample["detail"])
