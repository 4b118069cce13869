"""Which job ends were announced on the bus: one `END_EVENT#a<attempt>` item in the job's ledger
partition, written once EventBridge accepted the event, so a repeated end step puts nothing twice."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from testrelay.aws.ledger import RETENTION_SECONDS, Ledger


def _key(job_id: str, attempt: int) -> dict[str, str]:
    return {"pk": f"JOB#{job_id}", "sk": f"END_EVENT#a{attempt}"}


def announced(ledger: Ledger, job_id: str, attempt: int) -> dict[str, Any] | None:
    item = ledger.table.get_item(Key=_key(job_id, attempt), ConsistentRead=True).get("Item")
    return dict(item) if item else None


def mark_announced(ledger: Ledger, job_id: str, attempt: int, detail_type: str, event_id: str) -> bool:
    """Record the announcement; False when an earlier step had recorded one already."""
    now = int(time.time())
    try:
        ledger.table.put_item(
            Item={
                **_key(job_id, attempt),
                "detail_type": detail_type,
                "eventbridge_id": event_id,
                "created_at": now,
                "expires_at": now + RETENTION_SECONDS,
            },
            ConditionExpression="attribute_not_exists(pk)",
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return False
        raise
    return True
