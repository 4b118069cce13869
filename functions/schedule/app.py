"""EventBridge Scheduler target: a schedule firing becomes a trigger job on the queue."""

from __future__ import annotations

from typing import Any

from testrelay.observability import lambda_entry
from testrelay.relay.schedules import fire


@lambda_entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job = fire(str(event["schedule"]), event.get("scheduled_time"))
    return {"job_id": job.id, "route": job.route.name, "scheduled_time": job.event.pipeline_id}
