"""The job ledger (DynamoDB): what each job has done, so every step can be repeated safely.

One partition per job: `JOB` holds the job's state and summary, `TARGET#<name>` each write-back
target's run id and checkpoint.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from testrelay.aws.clients import resource
from testrelay.models.job import Job

RETENTION_SECONDS = 90 * 24 * 3600


def _plain(value: Any) -> Any:
    """DynamoDB hands numbers back as Decimal; callers want ints and floats."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _storable(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    return value


def _conditional_failed(exc: ClientError) -> bool:
    code: str = exc.response.get("Error", {}).get("Code", "")
    return code == "ConditionalCheckFailedException"


class Ledger:
    def __init__(self, table_name: str) -> None:
        self.table = resource("dynamodb").Table(table_name)

    @staticmethod
    def _key(job_id: str, sort: str) -> dict[str, str]:
        return {"pk": f"JOB#{job_id}", "sk": sort}

    def record_job(self, job: Job) -> bool:
        """Create the job's record once; False if it already existed (a redelivered message)."""
        now = int(time.time())
        item = {
            **self._key(job.id, "JOB"),
            "job_id": job.id,
            "kind": job.kind,
            "route": job.route.name,
            "provider": job.event.provider,
            "repository": job.event.repository,
            "commit_sha": job.event.commit_sha or "",
            "delivery_key": job.event.delivery_key,
            "state": "dispatched",
            "created_at": now,
            "updated_at": now,
            "expires_at": now + RETENTION_SECONDS,
        }
        try:
            self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise
        return True

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key=self._key(job_id, "JOB"), ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    def update_job(self, job_id: str, **fields: Any) -> None:
        self._update(self._key(job_id, "JOB"), {**fields, "updated_at": int(time.time())})

    def claim_run(self, job_id: str, run: dict[str, Any]) -> dict[str, Any]:
        """Record the Testsigma run for the job unless one is already recorded; return the recorded one."""
        try:
            self.table.update_item(
                Key=self._key(job_id, "JOB"),
                UpdateExpression="SET testsigma_run = :run, #state = :state, updated_at = :now",
                ConditionExpression="attribute_not_exists(testsigma_run)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":run": _storable(run),
                    ":state": "triggered",
                    ":now": int(time.time()),
                },
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            existing = self.get_job(job_id) or {}
            recorded: dict[str, Any] = existing["testsigma_run"]
            return recorded
        return run

    def recorded_run(self, job_id: str) -> dict[str, Any] | None:
        job = self.get_job(job_id)
        return job.get("testsigma_run") if job else None

    def get_target(self, job_id: str, target: str) -> dict[str, Any]:
        item = self.table.get_item(Key=self._key(job_id, f"TARGET#{target}"), ConsistentRead=True).get("Item")
        return _plain(item) if item else {}

    def update_target(self, job_id: str, target: str, **fields: Any) -> None:
        now = int(time.time())
        self._update(
            self._key(job_id, f"TARGET#{target}"),
            {**fields, "updated_at": now, "expires_at": now + RETENTION_SECONDS},
        )

    def _update(self, key: dict[str, str], fields: dict[str, Any]) -> None:
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": _storable(value) for i, value in enumerate(fields.values())}
        self.table.update_item(
            Key=key,
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
