"""The shards of one sharded CI run, gathered in the ledger (item `SHARDS` in the job's partition).

One item per run key and route: `state` (open, then sealed when the job merges them), the expected
count, the "done" call, and a map slot -> report (`shards`). Every change is one conditional update of
that item, so a shard that arrives while the job seals the collection is either in it or refused.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from testrelay.aws.ledger import RETENTION_SECONDS, _plain, _storable


class ShardsClosed(Exception):
    """The run's shards were already gathered (the write-back started): `record` says when and why."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__("shards already gathered")
        self.record = record


class ShardCountConflict(Exception):
    """A shard count other than the one the run's earlier reports gave."""

    def __init__(self, expected: int, given: int) -> None:
        super().__init__(f"this run key expects {expected} shards, this report says {given}")
        self.expected, self.given = expected, given


def _failed_condition(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code", "")) == "ConditionalCheckFailedException"


class ShardBook:
    def __init__(self, table: Any) -> None:
        """`table`: the ledger's DynamoDB table resource."""
        self.table = table

    @staticmethod
    def _key(job_id: str) -> dict[str, str]:
        return {"pk": f"JOB#{job_id}", "sk": "SHARDS"}

    def get(self, job_id: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key=self._key(job_id), ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    def _open(self, job_id: str, run_key: str, route: str, now: float) -> None:
        expires = int(now) + RETENTION_SECONDS
        self.table.update_item(
            Key=self._key(job_id),
            UpdateExpression="SET #state = if_not_exists(#state, :open), run_key = if_not_exists(run_key, :run_key), "
            "#route = if_not_exists(#route, :route), first_at = if_not_exists(first_at, :now), "
            "#shards = if_not_exists(#shards, :empty), expires_at = :expires",
            ExpressionAttributeNames={"#state": "state", "#route": "route", "#shards": "shards"},
            ExpressionAttributeValues={
                ":open": "open",
                ":run_key": run_key,
                ":route": route,
                ":now": _storable(now),
                ":empty": {},
                ":expires": expires,
            },
        )

    def _conditional(
        self, job_id: str, count: int | None, update: str, names: dict[str, str], values: dict[str, Any]
    ) -> dict[str, Any]:
        """One update of an open collection (and, with `count`, one whose count agrees); the old values."""
        condition = "#state = :open"
        extra: dict[str, Any] = {}
        if count is not None:
            update += ", expected = :count"
            condition += " AND (attribute_not_exists(expected) OR expected = :count)"
            extra[":count"] = count
        try:
            answer = self.table.update_item(
                Key=self._key(job_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#state": "state", **names},
                ExpressionAttributeValues={":open": "open", **values, **extra},
                ReturnValues="UPDATED_OLD",
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise
            record = self.get(job_id) or {}
            if record.get("state") != "open":
                raise ShardsClosed(record) from None
            raise ShardCountConflict(int(record["expected"]), int(count or 0)) from None
        old: dict[str, Any] = _plain(answer.get("Attributes") or {})
        return old

    def add(self, job_id: str, run_key: str, route: str, slot: str, entry: dict[str, Any], count: int | None) -> bool:
        """Put the report in its slot; True when it replaced an earlier upload of the same slot."""
        now = time.time()
        self._open(job_id, run_key, route, now)
        old = self._conditional(
            job_id,
            count,
            "SET #shards.#slot = :entry, last_at = :now",
            {"#shards": "shards", "#slot": slot},
            {":entry": _storable({**entry, "at": now}), ":now": _storable(now)},
        )
        return slot in (old.get("shards") or {})

    def mark_done(self, job_id: str, run_key: str, route: str, count: int | None) -> None:
        """The CI says every report was sent: the job gathers at its next look."""
        now = time.time()
        self._open(job_id, run_key, route, now)
        self._conditional(job_id, count, "SET done_at = if_not_exists(done_at, :now)", {}, {":now": _storable(now)})

    def seal(self, job_id: str, reason: str) -> dict[str, Any]:
        """Close the collection: from now on its shards are fixed and a late one is refused. A repeat
        (a retried step) returns the record sealed the first time."""
        try:
            answer = self.table.update_item(
                Key=self._key(job_id),
                UpdateExpression="SET #state = :sealed, sealed_at = :now, seal_reason = :reason",
                ConditionExpression="#state = :open",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":sealed": "sealed",
                    ":open": "open",
                    ":now": _storable(time.time()),
                    ":reason": reason,
                },
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if not _failed_condition(exc):
                raise
            return self.get(job_id) or {}
        sealed: dict[str, Any] = _plain(answer["Attributes"])
        return sealed

    def note_late(self, job_id: str, slot: str) -> None:
        """A shard refused because it came after the collection was sealed, counted on the record."""
        self.table.update_item(
            Key=self._key(job_id),
            UpdateExpression="ADD late_refused :one SET late_last = :slot",
            ExpressionAttributeValues={":one": 1, ":slot": slot},
        )
