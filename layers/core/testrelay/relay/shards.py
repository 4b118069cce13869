"""Sharded CI runs into one run per target: the reports of one run key are gathered, merged, written once.

Each report names its run key (the CI run id), optionally its shard (`3/8`) and its attempt. The first
one starts the run key's job (its id derives from route and run key, so every later report finds the
same job, and Step Functions starts it once). The job looks at what arrived (`gather`), waiting in a
Step Functions Wait state between two looks, until every shard of the expected count arrived, the CI
said "done", no new shard came for `settle_seconds`, or `max_wait_seconds` passed since the first; then
it seals the collection, merges the shards (`shard_cases`) and writes through the usual write-back. A
shard that comes after the seal is refused with a clear answer (409), never silently dropped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from testrelay.aws.results_store import open_report
from testrelay.aws.shard_book import ShardBook
from testrelay.errors import InvalidPayload
from testrelay.junit import JunitCase, parse_report
from testrelay.models.execution import STATUS_SEVERITY
from testrelay.models.job import Job
from testrelay.models.shards import ShardLabel
from testrelay.observability import logger
from testrelay.relay import services
from testrelay.settings import get_settings

MISSING_LISTED = 10


def book() -> ShardBook:
    return ShardBook(services.ledger().table)


def accept_shard(job: Job, label: ShardLabel, report_key: str, identity: str, cases: int | None) -> dict[str, Any]:
    """Record one report in its slot (ShardsClosed / ShardCountConflict when it cannot be); the answer's
    fields. Only the report's place and S3 key are kept: the job reads the reports when it merges them."""
    assert job.run_key is not None
    slot = label.slot(identity)
    entry: dict[str, Any] = {"key": report_key, "attempt": label.attempt}
    if label.index is not None:
        entry["index"] = label.index
    if cases is not None:
        entry["cases"] = cases
    shards = book()
    replaced = shards.add(job.id, job.run_key, job.route.name, slot, entry, label.count)
    record = shards.get(job.id) or {}
    logger.info(
        "shard received",
        job_id=job.id,
        run_key=job.run_key,
        shard=label.shard,
        attempt=label.attempt,
        replaced=replaced,
    )
    return {
        "run_key": job.run_key,
        "shard": label.shard,
        "attempt": label.attempt,
        "replaced": replaced,
        "received": len(record.get("shards") or {}),
        "expected": record.get("expected"),
    }


def closed_message(run_key: str, record: dict[str, Any]) -> str:
    sealed = record.get("sealed_at")
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(sealed))) if sealed else "earlier"
    return (
        f"run key {run_key!r} was already gathered ({record.get('seal_reason') or 'closed'}, {when}) and its results "
        "are being written without this report; nothing of it is written. Send it again with a new run key for a "
        "run of its own, or raise the route's junit.shards.settle_seconds"
    )


def _indices(record: dict[str, Any]) -> set[int]:
    return {int(entry["index"]) for entry in (record.get("shards") or {}).values() if entry.get("index") is not None}


def _missing(record: dict[str, Any]) -> list[int]:
    expected = record.get("expected")
    if not expected:
        return []
    present = _indices(record)
    return [index for index in range(1, int(expected) + 1) if index not in present]


def _ready(job: Job, record: dict[str, Any], now: float) -> tuple[str | None, float]:
    """Why the shards can be merged now (None: not yet), and the seconds until the window ends."""
    window = job.route.junit.shards
    first = float(record.get("first_at") or now)
    last = float(record.get("last_at") or first)
    if record.get("shards") and record.get("expected") and not _missing(record):
        return "all shards arrived", 0.0
    if record.get("done_at"):
        return "the CI said done", 0.0
    settle_left = last + window.settle_seconds - now
    cap_left = first + window.max_wait_seconds - now
    if cap_left <= 0:
        return f"max_wait_seconds ({window.max_wait_seconds}) passed", 0.0
    if settle_left <= 0:
        return f"no new shard for settle_seconds ({window.settle_seconds})", 0.0
    return None, min(settle_left, cap_left)


def gather(job: Job) -> dict[str, Any]:
    """One look at the run key's shards (the GatherShards task): seal and say `complete`, or say how
    long the state machine waits before the next look."""
    shards = book()
    record = shards.get(job.id)
    if record is None:
        raise InvalidPayload(f"junit job {job.id} has no shards recorded for run key {job.run_key!r}")
    if record.get("state") == "open":
        reason, left = _ready(job, record, time.time())
        if reason is None:
            wait = max(1, min(job.route.junit.shards.check_seconds, int(left) + 1))
            return {"complete": False, "received": len(record.get("shards") or {}), "next_wait_seconds": wait}
        record = shards.seal(job.id, reason)
    received = len(record.get("shards") or {})
    if not received:
        raise InvalidPayload(f"run key {job.run_key!r}: {record.get('seal_reason')}, but no report arrived")
    missing = _missing(record)
    summary: dict[str, Any] = {
        "received": received,
        "expected": record.get("expected"),
        "missing": missing,
        "reason": record.get("seal_reason"),
    }
    services.ledger().update_job(job.id, shards=summary)
    if missing:
        logger.warning("shards gathered without some", job_id=job.id, run_key=job.run_key, **summary)
    else:
        logger.info("shards gathered", job_id=job.id, run_key=job.run_key, **summary)
    return {"complete": True, **summary}


@dataclass
class _Kept:
    attempt: int
    severity: int
    result: JunitCase


def _replaces(current: _Kept | None, attempt: int, severity: int, latest: bool) -> bool:
    """Whether a result of `attempt` replaces the one kept for its case."""
    if current is None:
        return True
    if latest and attempt != current.attempt:
        return attempt > current.attempt
    return severity < current.severity


def _entries(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The sealed slots in a fixed order: by shard index, then attempt (reports without an index last)."""
    slots = record.get("shards") or {}
    return sorted(
        slots.values(), key=lambda e: (e.get("index") is None, int(e.get("index") or 0), int(e["attempt"]), e["key"])
    )


def shard_cases(job: Job) -> Iterator[list[JunitCase]]:
    """The merged results of the sealed shards: each case once (by suite, name and declared ids). Several
    results of one case (in two shards, or two attempts): the worst wins, or with `reruns: last` the
    latest attempt's (the worst of that attempt)."""
    record = book().get(job.id) or {}
    if record.get("state") != "sealed":
        raise InvalidPayload(f"junit job {job.id}: its shards are not gathered yet")
    latest = job.route.junit.shards.reruns == "last"
    bucket = get_settings().require("results_bucket")
    kept: dict[tuple[str | None, str, tuple[str, ...] | None], _Kept] = {}
    for entry in _entries(record):
        attempt = int(entry["attempt"])
        with open_report(bucket, str(entry["key"])) as stream:
            for result in parse_report(stream, job.route.junit):
                identity = (result.suite, result.name, result.ids)
                severity = STATUS_SEVERITY.index(result.status)
                current = kept.get(identity)
                if _replaces(current, attempt, severity, latest):
                    kept[identity] = _Kept(attempt, severity, result)
    for item in kept.values():
        yield [item.result]


def missing_note(job: Job) -> str | None:
    """ "shards 3, 7 of 8 never arrived" for a job gathered without them, else None."""
    if not job.run_key:
        return None
    gathered = (services.ledger().get_job(job.id) or {}).get("shards") or {}
    missing = [int(i) for i in gathered.get("missing") or []]
    if not missing:
        return None
    listed = ", ".join(map(str, missing[:MISSING_LISTED])) + (", …" if len(missing) > MISSING_LISTED else "")
    noun = "shard" if len(missing) == 1 else "shards"
    return f"{noun} {listed} of {gathered.get('expected')} never arrived"
