"""State machine task (one Map iteration, possibly several invocations): write the results to one target;
after a failure past its retries, answer the target's outcome from its checkpoint."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from testrelay.models.execution import RunRef
from testrelay.models.job import Job
from testrelay.models.routes import Target
from testrelay.observability import lambda_entry
from testrelay.relay.write_back import failed_outcome, write_back
from testrelay.relay.writers.common import Budget

_target: TypeAdapter[Target] = TypeAdapter(Target)


@lambda_entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "failed" in event:
        # The Map's Catch: the target failed past its retries; its outcome comes from its checkpoint.
        return failed_outcome(
            Job.model_validate(event["job"]), _target.validate_python(event["target"]), event["failed"]
        )
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    budget = Budget.for_invocation(remaining() if callable(remaining) else None)
    return write_back(
        Job.model_validate(event["job"]),
        RunRef.model_validate(event["run"]),
        event["results"],
        _target.validate_python(event["target"]),
        budget,
    )
