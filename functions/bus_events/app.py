"""EventBridge rule target: `Test Run Requested` (the stack's bus) and CodeBuild / CodePipeline state
changes (the default bus) become jobs on the queue (testrelay.relay.bus_intake)."""

from __future__ import annotations

from typing import Any

from testrelay.observability import lambda_entry
from testrelay.relay.bus_intake import receive_bus_event


@lambda_entry
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    return receive_bus_event(event)
