"""State machine task: one look at a sharded CI run's reports; gathered (sealed) or how long to wait."""

from __future__ import annotations

from typing import Any

from testrelay.models.job import Job
from testrelay.observability import lambda_entry
from testrelay.relay.shards import gather


@lambda_entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return gather(Job.model_validate(event["job"]))
