"""Starting the relay state machine, exactly once per job."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from testrelay.aws.clients import client


def start_once(state_machine_arn: str, name: str, payload: dict[str, Any]) -> bool:
    """Start an execution called `name`; False when one of that name already exists (not an error)."""
    try:
        client("stepfunctions").start_execution(stateMachineArn=state_machine_arn, name=name, input=json.dumps(payload))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return False
        raise
    return True
