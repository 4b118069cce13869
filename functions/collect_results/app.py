"""State machine task: gather the finished run's test-case results."""

from __future__ import annotations

from typing import Any

from testrelay.models.execution import RunRef
from testrelay.models.job import Job
from testrelay.observability import lambda_entry
from testrelay.relay.collect import collect_results


@lambda_entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return collect_results(Job.model_validate(event["job"]), RunRef.model_validate(event["run"]))
