"""State machine task on the failure path: record the reason and tell the CI."""

from __future__ import annotations

from typing import Any

from testrelay.models.job import Job
from testrelay.observability import lambda_entry
from testrelay.relay.report import record_failure


@lambda_entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return record_failure(Job.model_validate(event["job"]), event.get("run"), event.get("error") or {})
