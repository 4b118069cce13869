"""State machine task: trigger the route's Testsigma test plan (or adopt the job's existing run)."""

from __future__ import annotations

from typing import Any

from testrelay.models.job import Job
from testrelay.observability import lambda_entry
from testrelay.relay.run import first_look_at, trigger_plan


@lambda_entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job = Job.model_validate(event["job"])
    run = trigger_plan(job)
    # When the state machine first looks at the run: not part of the run's record, computed afresh.
    return {**run.model_dump(mode="json"), "first_look_at": first_look_at(job, run)}
