"""State machine task: trigger the route's Testsigma test plan (or adopt the job's existing run)."""

from __future__ import annotations

from typing import Any

from testrelay.models.job import Job
from testrelay.observability import lambda_entry
from testrelay.relay.run import trigger_plan


@lambda_entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return trigger_plan(Job.model_validate(event["job"])).model_dump(mode="json")
