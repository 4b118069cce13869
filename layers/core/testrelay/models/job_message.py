"""A job as the queue carries it, built without its pydantic model (the webhook's cold path).

`job_fields` is the one description of a new job's fields: `Job.for_event` validates them into the
model; the webhook serialises them as they are, with the route's action from the routes index (already
validated when the index was written) and the event it has just checked."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from testrelay.models.ci_event import CiEvent


def job_id_for(provider: str, delivery_key: str, route_name: str) -> str:
    """Deterministic: the same delivery and route always give the same id (and execution name)."""
    digest = hashlib.sha256(f"{provider}\0{delivery_key}\0{route_name}".encode()).hexdigest()
    return f"{route_name}-{digest[:24]}"


def job_fields(event: CiEvent, route: Any, route_name: str) -> dict[str, Any]:
    """A trigger job, or a result-sync job when the event names a Testsigma run that already exists."""
    return {
        "schema_version": 1,
        "id": job_id_for(event.provider, event.delivery_key, route_name),
        "kind": "trigger" if event.testsigma_run_id is None else "result_sync",
        "route": route,
        "event": event,
        "testsigma_run_id": event.testsigma_run_id,
        "report_key": None,
        "run_key": None,
        "created_at": time.time(),
    }


@dataclass(frozen=True)
class JobMessage:
    id: str
    kind: str
    body: str

    def message_body(self) -> str:
        return self.body


def job_message(event: CiEvent, route_name: str, action: Mapping[str, Any]) -> JobMessage:
    fields = job_fields(event, dict(action), route_name)
    fields["event"] = event.as_json()
    body = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return JobMessage(id=fields["id"], kind=fields["kind"], body=body)
