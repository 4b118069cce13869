"""State machine task (one Map iteration): write the results to one test-management target."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from testrelay.models.execution import RunRef
from testrelay.models.job import Job
from testrelay.models.routes import Target
from testrelay.observability import lambda_entry
from testrelay.relay.collect import load_results
from testrelay.relay.write_back import write_to_testsigma_tm

_target = TypeAdapter(Target)


@lambda_entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    job = Job.model_validate(event["job"])
    target = _target.validate_python(event["target"])
    results = load_results(event["results"])
    return write_to_testsigma_tm(job, RunRef.model_validate(event["run"]), results, target)
