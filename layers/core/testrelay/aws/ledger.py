"""The job ledger (DynamoDB): what each job has done, so every step can be repeated safely.

One partition per job: `JOB` holds the job's state and summary, `TARGET#<name>` each write-back
target's run id and checkpoint. One item per test plan (`PLAN#<plan key>`, `DURATIONS`) holds the
durations of its recent runs, which predictive polling reads.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Literal

from botocore.exceptions import ClientError

from testrelay.aws.clients import resource
from testrelay.models.job import Job

RETENTION_SECONDS = 90 * 24 * 3600
# The ledger's time index (template.yaml, LedgerTable): each job item carries its UTC creation day, so the
# recent jobs are a query per day, newest first, not a scan of the table. Target items stay out of it.
TIME_INDEX = "JobsByDay"
DAY_KEY = "jobs_day"


def job_day(created_at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(created_at))


_HISTORY_WRITE_ATTEMPTS = 5

# Where a job can be run again from (`testrelay retry`): it ended without writing every result, or never started.
RETRYABLE_STATES = ("failed", "partial", "timed_out", "dispatch_failed")
# A job in one of these is on its way (or still runs): a retry is refused.
RUNNING_STATES = ("dispatched", "retry_queued", "triggered", "running", "completed_run")
# Every result written: nothing to retry.
SUCCEEDED_STATES = ("reported",)


def execution_name(job_id: str, attempt: int) -> str:
    """The first attempt is named after the job (a redelivered webhook dedupes on it); retries add -a<n>."""
    return job_id if attempt <= 1 else f"{job_id}-a{attempt}"


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


class RetryRefused(Exception):
    """The job cannot be retried now; the message says why."""


def _conditional_failed(exc: ClientError) -> bool:
    code: str = exc.response.get("Error", {}).get("Code", "")
    return code == "ConditionalCheckFailedException"


class Ledger:
    def __init__(self, table_name: str, dynamodb: Any = None) -> None:
        """`dynamodb`: a boto3 DynamoDB resource (the operator CLI's, for a given stack); default this process's."""
        self.table = (dynamodb or resource("dynamodb")).Table(table_name)

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
            # The job itself, so `testrelay retry` can run it again without its original message.
            "job": job.model_dump_json(),
            "attempt": 1,
            "created_at": now,
            "updated_at": now,
            "expires_at": now + RETENTION_SECONDS,
            DAY_KEY: job_day(now),
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

    def claim_attempt(self, job_id: str, attempt: int) -> Literal["claimed", "held"]:
        """Move the job to `attempt` (the previous one + 1) if it may be retried: `claimed` when this call
        moved it, `held` when the job already is at that attempt (the same request delivered twice, or a
        concurrent retry that claimed it first); RetryRefused says why not otherwise. Conditional, so two
        retries of the same job at once claim one attempt."""
        previous = attempt - 1
        current = "(attribute_not_exists(attempt) OR attempt = :previous)" if previous == 1 else "attempt = :previous"
        states = ", ".join(f":s{i}" for i in range(len(RETRYABLE_STATES)))
        try:
            self.table.update_item(
                Key=self._key(job_id, "JOB"),
                UpdateExpression="SET attempt = :attempt, #state = :queued, retried_from = #state, updated_at = :now",
                ConditionExpression=f"attribute_exists(pk) AND {current} AND #state IN ({states})",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":attempt": attempt,
                    ":previous": previous,
                    ":queued": "retry_queued",
                    ":now": int(time.time()),
                    **{f":s{i}": state for i, state in enumerate(RETRYABLE_STATES)},
                },
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            record = self.get_job(job_id)
            if record is None:
                raise RetryRefused(f"no job {job_id} in the ledger") from None
            if int(record.get("attempt", 1)) == attempt:
                return "held"
            raise RetryRefused(
                refusal(job_id, record) or f"job {job_id} is at attempt {record.get('attempt', 1)}, not {attempt - 1}"
            ) from None
        return "claimed"

    def record_dispatch_failure(self, job_id: str, reason: str) -> None:
        """Why the job's execution could not be started (kept while the message is retried or rests in
        the DLQ); never over the state of a job whose execution did start."""
        try:
            self.table.update_item(
                Key=self._key(job_id, "JOB"),
                UpdateExpression="SET #state = :failed, dispatch_error = :reason, updated_at = :now "
                "ADD dispatch_failures :one",
                ConditionExpression="#state IN (:dispatched, :failed, :queued)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":failed": "dispatch_failed",
                    ":dispatched": "dispatched",
                    ":queued": "retry_queued",
                    ":reason": reason[:500],
                    ":one": 1,
                    ":now": int(time.time()),
                },
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def record_dispatched(self, job_id: str, attempt: int) -> None:
        """The attempt's execution started: a job that had failed to dispatch is on its way again."""
        try:
            self.table.update_item(
                Key=self._key(job_id, "JOB"),
                UpdateExpression="SET #state = :dispatched, execution = :name, updated_at = :now",
                ConditionExpression="#state IN (:failed, :queued)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":dispatched": "dispatched",
                    ":failed": "dispatch_failed",
                    ":queued": "retry_queued",
                    ":name": execution_name(job_id, attempt),
                    ":now": int(time.time()),
                },
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

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

    @staticmethod
    def _plan_key(plan_id: int) -> dict[str, str]:
        return {"pk": f"PLAN#{plan_id}", "sk": "PLAN"}

    def plan_last_run(self, plan_id: int) -> int | None:
        """The latest Testsigma run of the plan the relay has seen (None: none yet)."""
        item = self.table.get_item(Key=self._plan_key(plan_id), ConsistentRead=True).get("Item")
        return int(item["last_run_id"]) if item and item.get("last_run_id") is not None else None

    def note_plan_run(self, plan_id: int, run_id: int) -> None:
        """Note the latest run of the plan the relay saw. Unconditional: two jobs noting out of order
        leave an older run, from which a look-up only walks back further."""
        self._update(self._plan_key(plan_id), {"last_run_id": run_id, "updated_at": int(time.time())})

    def get_target(self, job_id: str, target: str) -> dict[str, Any]:
        item = self.table.get_item(Key=self._key(job_id, f"TARGET#{target}"), ConsistentRead=True).get("Item")
        return _plain(item) if item else {}

    def update_target(self, job_id: str, target: str, **fields: Any) -> None:
        now = int(time.time())
        self._update(
            self._key(job_id, f"TARGET#{target}"),
            {**fields, "updated_at": now, "expires_at": now + RETENTION_SECONDS},
        )

    @staticmethod
    def _durations_key(plan: str) -> dict[str, str]:
        return {"pk": f"PLAN#{plan}", "sk": "DURATIONS"}

    def run_durations(self, plan: str) -> list[float]:
        """The plan's recent run durations in seconds, oldest first (empty without history)."""
        item = self.table.get_item(Key=self._durations_key(plan), ConsistentRead=True).get("Item")
        return [float(run["seconds"]) for run in _plain(item or {}).get("runs", [])]

    def record_run_duration(self, plan: str, run_id: int, seconds: float, keep: int) -> bool:
        """Adds a finished run's duration to the plan's history, keeping the `keep` newest; False when
        the run is already there (a repeated look). Conditional on the version read, so concurrent
        finishes of one plan all land; after repeated conflicts the duration is dropped (returns False):
        history only tunes polling."""
        key = self._durations_key(plan)
        for _ in range(_HISTORY_WRITE_ATTEMPTS):
            item = _plain(self.table.get_item(Key=key, ConsistentRead=True).get("Item") or {})
            runs: list[dict[str, Any]] = item.get("runs", [])
            if any(run.get("run_id") == run_id for run in runs):
                return False
            version = int(item.get("version", 0))
            now = int(time.time())
            try:
                self.table.put_item(
                    Item={
                        **key,
                        "runs": _storable([*runs, {"run_id": run_id, "seconds": round(seconds, 3)}][-keep:]),
                        "version": version + 1,
                        "updated_at": now,
                        "expires_at": now + RETENTION_SECONDS,
                    },
                    ConditionExpression="attribute_not_exists(pk) OR version = :version",
                    ExpressionAttributeValues={":version": version},
                )
            except ClientError as exc:
                if not _conditional_failed(exc):
                    raise
                continue
            return True
        return False

    def get_history(self, scope: str) -> dict[str, Any] | None:
        """The last CI report of a route for one pull request or branch (testrelay.relay.ci_digest)."""
        item = self.table.get_item(Key=self._history_key(scope), ConsistentRead=True).get("Item")
        return _plain(item) if item else None

    def put_history(self, scope: str, **fields: Any) -> None:
        now = int(time.time())
        self._update(self._history_key(scope), {**fields, "updated_at": now, "expires_at": now + RETENTION_SECONDS})

    @staticmethod
    def _history_key(scope: str) -> dict[str, str]:
        return {"pk": f"HISTORY#{scope}", "sk": "REPORT"}

    def _update(self, key: dict[str, str], fields: dict[str, Any]) -> None:
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": _storable(value) for i, value in enumerate(fields.values())}
        self.table.update_item(
            Key=key,
            UpdateExpression="SET " + ", ".join(f"#f{i} = :v{i}" for i in range(len(fields))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )


def refusal(job_id: str, record: dict[str, Any]) -> str | None:
    """Why the job cannot be retried now, or None when it can."""
    state = str(record.get("state", ""))
    attempt = int(record.get("attempt", 1))
    if state in RETRYABLE_STATES:
        return None
    if state in SUCCEEDED_STATES:
        return f"job {job_id} succeeded (attempt {attempt}): every result is written, nothing to retry"
    if state in RUNNING_STATES:
        return f"job {job_id} is still running (attempt {attempt}, state {state}): wait for it to end, then retry"
    return f"job {job_id} is in state {state!r} (attempt {attempt}): it cannot be retried"
