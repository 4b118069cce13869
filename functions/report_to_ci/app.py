"""State machine task: summary to the CI commit and the ledger."""

from __future__ import annotations

from typing import Any

from testrelay.models.execution import RunRef
from testrelay.models.job import Job
from testrelay.observability import lambda_entry
from testrelay.relay.report import report_to_ci


@lambda_entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return report_to_ci(
        Job.model_validate(event["job"]),
        RunRef.model_validate(event["run"]),
        event["results"],
        event["writeback"],
    )
