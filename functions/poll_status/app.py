"""State machine task: one look at the Testsigma run's status."""

from __future__ import annotations

from typing import Any

from testrelay.models.execution import RunRef
from testrelay.models.job import Job
from testrelay.observability import lambda_entry
from testrelay.relay.run import poll_status


@lambda_entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return poll_status(Job.model_validate(event["job"]), RunRef.model_validate(event["run"]), event.get("poll"))
