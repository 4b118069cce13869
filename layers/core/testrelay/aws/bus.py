"""PutEvents on the stack's EventBridge bus."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from testrelay.aws.clients import client
from testrelay.errors import RelayError


class PutEventsFailed(RelayError):
    """EventBridge did not accept the event (the reason is EventBridge's)."""


def put_event(
    bus_name: str, source: str, detail_type: str, detail: Mapping[str, Any], resources: list[str] | None = None
) -> str:
    """Put one event; its EventBridge id."""
    entry = {
        "EventBusName": bus_name,
        "Source": source,
        "DetailType": detail_type,
        "Detail": json.dumps(detail, separators=(",", ":")),
        "Resources": resources or [],
    }
    try:
        answer = client("events").put_events(Entries=[entry])
    except (ClientError, BotoCoreError) as exc:
        raise PutEventsFailed(f"PutEvents failed: {exc}") from exc
    [result] = answer.get("Entries") or [{}]
    if answer.get("FailedEntryCount") or result.get("ErrorCode") or not result.get("EventId"):
        raise PutEventsFailed(f"PutEvents refused the event: {result.get('ErrorCode')}: {result.get('ErrorMessage')}")
    return str(result["EventId"])
