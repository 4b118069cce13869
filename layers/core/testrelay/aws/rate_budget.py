"""One rate budget per vendor account, shared by every process of every concurrent execution.

The budget is one item of the ledger table, `pk = BUDGET#<vendor>#<account hash>`, `sk = BUDGET`:

| attribute | meaning |
|---|---|
| `tat` | the "theoretical arrival time" (epoch seconds): the first slot nobody has reserved yet |
| `hold_until` | the end of the last pause a vendor asked for (a 429, Retry-After, a spent window) |
| `reserved`, `leases`, `throttles` | counters: slots handed out, reservations (DynamoDB calls), throttles reported |
| `expires_at` | TTL: an idle budget disappears after a day |

It is a GCRA (a token bucket without burst, expressed as one timestamp): reserving `n` calls moves
`tat` forward by `n * interval`, and the caller owns the slots `[tat_before, tat_after)`, one every
`interval` seconds. Calls are sent at their slot, never before; so however many processes reserve,
the vendor sees at most one call per `interval`, plus the jitter of a late slot (bounded: a slot more
than `max_late` late is dropped, never sent in a burst with later ones, and a caller that wakes from
its wait later than the pace's margin takes another slot instead of sending beside the next one).

The update is atomic without a read in the busy case (`SET tat = tat + :span` under the condition
`tat >= :now AND tat <= :horizon`); an idle budget (`tat` in the past or absent) is restarted at
`now` under the opposite condition; a condition failure returns the item (`ALL_OLD`), so the next
attempt needs no read either. `horizon` bounds how far ahead slots may be reserved: beyond it a
caller waits instead of hoarding slots it would use late.

A pause asked for by the vendor pushes `tat` (and `hold_until`) to its end for everybody: one 429 in
one Lambda holds back every concurrent execution of the account. Slots a process had already leased
are dropped when it learns of the pause (its own throttle, or its next reservation).

The lease (`lease` slots per DynamoDB call) divides the DynamoDB calls by `lease`. It cannot raise
the rate: leased slots are still spaced by `interval`, and a lease that is not used in time expires
slot by slot (its calls are lost to everybody: a cost in throughput, never in the limit).

Clock: wall-clock epoch seconds (`time.time`), the only clock every Lambda host shares (NTP keeps
them within milliseconds; `max_late` is half the margin the pace leaves, the other half covers
skew and jitter).

When DynamoDB throttles or cannot be reached, the budget falls back to a per-process limiter at
`1 / fallback_share` of the rate for `fallback_seconds`, then tries the table again: slower, never
faster than the limit as long as no more than `fallback_share` processes fall back together. A
missing table or permission is a configuration error and says so.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from testrelay.aws.clients import session
from testrelay.errors import ConfigurationError
from testrelay.observability import logger
from testrelay.sync.rate_limit import MAX_OVERSLEPT, Announced, RateLimited, RateLimiter, RateSpec

SORT_KEY = "BUDGET"
TTL_SECONDS = 24 * 3600
# DynamoDB answers that mean "not now": fall back to the local limiter for a while.
_TRANSIENT = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
    }
)
_MISCONFIGURED = frozenset({"ResourceNotFoundException", "AccessDeniedException", "UnrecognizedClientException"})


def account_hash(*identity: str) -> str:
    """A stable, non-secret name for a vendor account: a hash of its host and user name (never a key)."""
    return hashlib.sha256("\x1f".join(identity).encode()).hexdigest()[:16]


@cache
def dynamodb_client() -> Any:
    """The DynamoDB client of the budgets (cached per process; the local runtime clears it with its stack)."""
    # Few, quick retries: a budget call is on the path of every vendor call, and the fallback is cheap.
    config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=2)
    return session().create_client("dynamodb", config=config)


def _n(value: float) -> dict[str, str]:
    return {"N": str(Decimal(repr(round(value, 6))))}


def _float(item: dict[str, Any] | None, name: str) -> float | None:
    if not item or name not in item:
        return None
    return float(item[name]["N"])


@dataclass
class SharedBudget:
    table: str
    vendor: str
    account: str
    """A non-secret account identity (see `account_hash`)."""
    spec: RateSpec
    lease: int = 4
    """The most slots one DynamoDB call reserves (the lease adapts: halved when slots went unused in
    time, doubled up to this when a lease was used up)."""
    max_late: float | None = None
    """How late a slot may still be used; default: what `spec` allows."""
    horizon: float | None = None
    """How far ahead slots may be reserved; default: room for eight leases."""
    fallback_share: int = 4
    fallback_seconds: float = 30.0
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    client: Any = None
    _spec: RateSpec = field(init=False)
    _lease: int = 1
    _dropped_at_reserve: int = 0
    _slots: deque[float] = field(default_factory=deque)
    _tat: float = 0.0
    _hold_until: float = 0.0
    _fallback_until: float = 0.0
    _fallback: RateLimiter | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # What this process did: read by tests and benchmarks.
    reservations: int = 0
    dropped: int = 0
    calls: int = 0
    waited: float = 0.0

    def __post_init__(self) -> None:
        if self.lease < 1:
            raise ValueError("lease must be at least 1")
        self._spec = self.spec

    @property
    def key(self) -> dict[str, Any]:
        return {"pk": {"S": f"BUDGET#{self.vendor}#{self.account}"}, "sk": {"S": SORT_KEY}}

    @property
    def interval(self) -> float:
        return self._spec.interval

    @property
    def _max_late(self) -> float:
        return self.max_late if self.max_late is not None else self._spec.max_lateness()

    @property
    def _horizon(self) -> float:
        return self.horizon if self.horizon is not None else max(8 * self.lease * self.interval, 1.0)

    def _db(self) -> Any:
        return self.client if self.client is not None else dynamodb_client()

    # -- the Pacer contract ------------------------------------------------------------------------

    def acquire(self, max_wait: float = float("inf")) -> float:
        waited = 0.0
        overslept = 0
        while True:
            with self._lock:
                now = self.clock()
                if now < self._fallback_until:
                    fallback = self._fallback_limiter()
                else:
                    fallback = None
                    slot, wait_until = self._next_slot(now)
            if fallback is not None:
                delay = fallback.acquire(max_wait - waited)
                self._count(delay)
                return waited + delay
            if slot is not None:
                delay = max(0.0, slot - now)
                if waited + delay > max_wait:
                    with self._lock:
                        self._slots.appendleft(slot)
                    raise RateLimited(waited + delay)
                if delay > 0:
                    self.sleep(delay)
                waited += delay
                if overslept < MAX_OVERSLEPT and self._spec.woke_too_late(self.clock() - slot):
                    # Woken too late for this slot: sent now, the call would land beside the next one.
                    overslept += 1
                    with self._lock:
                        self.dropped += 1
                        self.waited += delay
                    continue
                self._count(delay)
                return waited
            # Nothing reservable before `wait_until`: everybody is held back (a pause, or a full horizon);
            # the first slot there could be is `tat`.
            delay = max(0.0, wait_until - now)
            earliest = max(delay, self._tat - now)
            if waited + earliest > max_wait:
                raise RateLimited(waited + earliest)
            self.sleep(max(delay, 0.001))
            waited += delay

    def hold_off(self, seconds: float) -> None:
        with self._lock:
            until = self.clock() + seconds
            self._hold_until = max(self._hold_until, until)
            self._tat = max(self._tat, until)
            self._drop_before(until)
            try:
                self._db().update_item(
                    TableName=self.table,
                    Key=self.key,
                    UpdateExpression="SET tat = :until, hold_until = :until, expires_at = :exp ADD throttles :one",
                    ConditionExpression="attribute_not_exists(tat) OR tat < :until",
                    ExpressionAttributeValues={
                        ":until": _n(until),
                        ":exp": {"N": str(int(until) + TTL_SECONDS)},
                        ":one": {"N": "1"},
                    },
                )
            except ClientError as exc:
                # Already held (or reserved) beyond this pause: nothing to push.
                if _code(exc) != "ConditionalCheckFailedException":
                    self._db_failed(exc)
            except BotoCoreError as exc:
                self._db_failed(exc)
            if self._fallback is not None:
                self._fallback.hold_off(seconds)

    def observe(self, announced: Announced) -> None:
        if announced.limit is not None and 0 < announced.limit < self._spec.limit:
            with self._lock:
                self._spec = RateSpec(announced.limit, self._spec.period, self._spec.pace)
        if self._spec.spent_elsewhere(announced) and announced.reset_in is not None:
            self.hold_off(announced.reset_in)

    # -- internals (under the lock) ----------------------------------------------------------------

    def _count(self, delay: float) -> None:
        with self._lock:
            self.calls += 1
            self.waited += delay

    def _drop_before(self, moment: float) -> None:
        while self._slots and self._slots[0] < moment:
            self._slots.popleft()
            self.dropped += 1

    def _next_slot(self, now: float) -> tuple[float | None, float]:
        """A slot of this process's lease (reserving a new lease when it is spent), or when to try again."""
        self._drop_before(max(now - self._max_late, self._hold_until))
        if self._slots:
            return self._slots.popleft(), now
        wait_until = self._reserve(now)
        if self._slots:
            return self._slots.popleft(), now
        return None, wait_until

    def _reserve(self, now: float) -> float:
        """Reserves `lease` slots into `_slots`; returns when to try again if none could be had."""
        # A process whose calls take longer than the interval cannot use a long lease in time.
        if self.dropped > self._dropped_at_reserve:
            self._lease = max(1, self._lease // 2)
        elif self.reservations:
            self._lease = min(self.lease, self._lease * 2)
        self._dropped_at_reserve = self.dropped
        lease = self._lease
        span = lease * self.interval
        horizon = now + self._horizon
        values = {
            ":one": {"N": "1"},
            ":k": {"N": str(lease)},
            ":exp": {"N": str(int(now) + TTL_SECONDS)},
            ":now": _n(now),
        }
        busy = self._tat >= now
        for _ in range(4):
            try:
                if busy:
                    answer = self._db().update_item(
                        TableName=self.table,
                        Key=self.key,
                        UpdateExpression="SET tat = tat + :span, expires_at = :exp ADD reserved :k, leases :one",
                        ConditionExpression="tat >= :now AND tat <= :horizon",
                        ExpressionAttributeValues={**values, ":span": _n(span), ":horizon": _n(horizon)},
                        ReturnValues="ALL_NEW",
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    )
                else:
                    answer = self._db().update_item(
                        TableName=self.table,
                        Key=self.key,
                        UpdateExpression="SET tat = :start, expires_at = :exp ADD reserved :k, leases :one",
                        ConditionExpression="attribute_not_exists(tat) OR tat < :now",
                        ExpressionAttributeValues={**values, ":start": _n(now + span)},
                        ReturnValues="ALL_NEW",
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                    )
            except ClientError as exc:
                if _code(exc) != "ConditionalCheckFailedException":
                    return self._db_failed(exc, now)
                old = exc.response.get("Item")
                tat = _float(old, "tat")
                self._hold_until = max(self._hold_until, _float(old, "hold_until") or 0.0)
                if tat is None or tat < now:
                    busy, self._tat = False, tat or 0.0
                    continue
                self._tat = tat
                if tat > horizon:
                    # Reserved (or held) beyond the horizon: come back when the horizon reaches it.
                    return tat - self._horizon
                busy = True
                continue
            except BotoCoreError as exc:
                return self._db_failed(exc, now)
            item = answer["Attributes"]
            self._tat = float(item["tat"]["N"])
            self._hold_until = max(self._hold_until, _float(item, "hold_until") or 0.0)
            first = self._tat - span
            self._slots.extend(first + index * self.interval for index in range(lease))
            self.reservations += 1
            self._drop_before(self._hold_until)
            return now
        return now  # contention: try again at once

    def _fallback_limiter(self) -> RateLimiter:
        if self._fallback is None:
            self._fallback = RateLimiter(
                self._spec.limit,
                self._spec.period * self.fallback_share,
                clock=self.clock,
                sleep=self.sleep,
                pace=self._spec.pace,
            )
            self._fallback.hold_off(max(0.0, self._hold_until - self.clock()))
        return self._fallback

    def _db_failed(self, exc: Exception, now: float | None = None) -> float:
        code = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
        if code in _MISCONFIGURED:
            raise ConfigurationError(
                f"the rate budget of {self.vendor} cannot use table {self.table!r}: {code}"
            ) from exc
        if isinstance(exc, ClientError) and code not in _TRANSIENT:
            raise exc
        moment = self.clock() if now is None else now
        if moment >= self._fallback_until:
            logger.warning(
                "rate budget table unavailable: pacing this process alone at a fraction of the limit",
                vendor=self.vendor,
                error=code,
                fallback_share=self.fallback_share,
                fallback_s=self.fallback_seconds,
            )
        self._fallback_until = moment + self.fallback_seconds
        return moment


def _code(exc: ClientError) -> str:
    code: str = exc.response.get("Error", {}).get("Code", "")
    return code
