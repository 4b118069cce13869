"""Client-side pacing of vendor calls: the contract (`Pacer`), the vendor's limit (`RateSpec`), the
per-process limiter, and what a vendor announces about its budget (`Announced`).

Pacing (one call every `interval` seconds) rather than bursting keeps the vendor's own window
counter from ever seeing more than the limit, whichever way it aligns its windows. Calls are paced
at `pace` (a fraction, e.g. 0.95) of the documented limit: calls sent on time can still arrive
bunched (network and server jitter, clock skew between hosts), and the vendor counts arrivals.

Two pacers implement the contract: `RateLimiter` (one process; what is left when no ledger table is
configured) and `testrelay.aws.rate_budget.SharedBudget` (every process of every concurrent
execution, through one DynamoDB item per vendor account).
"""

from __future__ import annotations

import email.utils
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol


class RateLimited(Exception):
    """The next call may not go out within the wait the caller allows."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"the rate budget holds calls back for {wait:.1f}s")
        self.wait = wait


RESET_ROUNDING = 1.0
"""How much later than the true moment a reset header may name (whole epoch seconds, rounded up)."""

MAX_OVERSLEPT = 3
"""How many times one call gives up a slot it woke too late for (a loaded host oversleeps) before it
goes out anyway: a call sent that late would land beside the next slot's call, past what the pace
leaves room for."""


@dataclass(frozen=True)
class RateSpec:
    """A vendor's limit: `limit` requests per `period` seconds, paced at `pace` of it."""

    limit: int
    period: float
    pace: float = 0.95

    @property
    def interval(self) -> float:
        return self.period / (self.limit * self.pace)

    def margin(self) -> float:
        """How late a call may arrive after its slot without any window of `period` seconds seeing
        more than `limit` calls.

        Calls sent at slots `interval` apart, each at most `d` late, land in a window of `period` only
        if their slots lie in a span of `period + d`, which holds at most floor((period + d) / interval)
        + 1 slots: that stays <= limit while period + d < limit * interval, i.e. d < period * (1 / pace
        - 1). Fixed windows (aligned on the clock or on a first call) and sliding ones alike."""
        return max(0.0, self.period * (1 / self.pace - 1))

    def woke_too_late(self, lateness: float) -> bool:
        """Whether a caller that woke `lateness` seconds after its slot should give the slot up (see
        MAX_OVERSLEPT). At pace 1 there is no margin to keep: giving slots up would only slow calls down."""
        return lateness > self.margin() > 0

    def max_lateness(self) -> float:
        """How late a reserved slot may still be handed out: half the margin, the other half is left
        for the jitter between sending and arriving."""
        return self.margin() / 2

    def fills_window(self) -> bool:
        """Whether this pace alone brings some windows to the limit (more than `limit - 1` calls a
        window): a vendor's "0 remaining" at the top of such a window is then our own doing."""
        return self.limit * self.pace > self.limit - 1

    def spent_elsewhere(self, announced: Announced) -> bool:
        """Whether an announced "0 remaining" calls for a pause until its reset: our pace cannot
        explain it (it never fills a window), or the reset lies beyond one window (a longer quota, a
        lockout; RESET_ROUNDING allows for a reset given in whole epoch seconds). A window our own
        pace filled needs none: the next slot is already after the reset of the window it is in."""
        if announced.remaining is None or announced.remaining > 0 or announced.reset_in is None:
            return False
        return not self.fills_window() or announced.reset_in > self.period + RESET_ROUNDING


@dataclass(frozen=True)
class Announced:
    """What a vendor says about its budget on an answer (Testsigma TM's `x-tms-api-*` headers)."""

    limit: int | None
    remaining: int | None
    reset_in: float | None
    """Seconds until the vendor's window resets."""


class Pacer(Protocol):
    def acquire(self, max_wait: float = float("inf")) -> float:
        """Blocks until the next call may go out and returns the seconds waited; raises RateLimited,
        without waiting, if that would take longer than `max_wait`."""
        ...

    def hold_off(self, seconds: float) -> None:
        """The vendor asked for a pause (a throttle): nobody sends before it ends."""
        ...

    def observe(self, announced: Announced) -> None:
        """The vendor announced its budget: slow down when it says less remains than we think."""
        ...


@dataclass
class RateLimiter:
    """Paces the calls of one process."""

    limit: int
    period: float = 60.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    pace: float = 1.0
    _next_slot: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    calls: int = 0
    waited: float = 0.0

    @property
    def spec(self) -> RateSpec:
        return RateSpec(self.limit, self.period, self.pace)

    @property
    def interval(self) -> float:
        return self.spec.interval

    def acquire(self, max_wait: float = float("inf")) -> float:
        spec = self.spec
        waited = 0.0
        for overslept in range(MAX_OVERSLEPT + 1):
            with self._lock:
                now = self.clock()
                slot = max(now, self._next_slot)
                delay = slot - now
                if waited + delay > max_wait:
                    raise RateLimited(waited + delay)
                self._next_slot = slot + spec.interval
                self.waited += delay
            if delay > 0:
                self.sleep(delay)
            waited += delay
            if overslept == MAX_OVERSLEPT or not spec.woke_too_late(self.clock() - slot):
                break
        with self._lock:
            self.calls += 1
        return waited

    def hold_off(self, seconds: float) -> None:
        with self._lock:
            self._next_slot = max(self._next_slot, self.clock() + seconds)

    def observe(self, announced: Announced) -> None:
        if announced.limit is not None and 0 < announced.limit < self.limit:
            self.limit = announced.limit
        if self.spec.spent_elsewhere(announced) and announced.reset_in is not None:
            self.hold_off(announced.reset_in)


_shared: dict[tuple[str, str, int, float], RateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(scope: str, account: str, limit: int, period: float = 60.0, pace: float = 1.0) -> RateLimiter:
    """The process-wide limiter of one vendor account (`account` is a non-secret identity, e.g. a user name)."""
    with _shared_lock:
        key = (scope, account, limit, period)
        limiter = _shared.get(key)
        if limiter is None:
            limiter = _shared[key] = RateLimiter(limit, period, pace=pace)
        return limiter


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def reset_seconds(value: str | None, now: float) -> float | None:
    """Seconds until a `...-reset` header's moment, whichever undocumented form it takes: epoch
    milliseconds, epoch seconds, seconds from now, or an HTTP date."""
    if not value:
        return None
    number = _number(value)
    if number is None:
        try:
            moment = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return None
        return max(0.0, moment - now)
    if number > 1e11:  # epoch milliseconds
        return max(0.0, number / 1000 - now)
    if number > 1e8:  # epoch seconds
        return max(0.0, number - now)
    return max(0.0, number)  # seconds from now


def announced_by(
    prefix: str, clock: Callable[[], float] = time.time
) -> Callable[[Mapping[str, str]], Announced | None]:
    """A reader of `<prefix>limit`, `<prefix>remaining` and `<prefix>reset` headers."""

    def read(headers: Mapping[str, str]) -> Announced | None:
        limit, remaining = _number(headers.get(prefix + "limit")), _number(headers.get(prefix + "remaining"))
        reset = headers.get(prefix + "reset")
        if limit is None and remaining is None and reset is None:
            return None
        return Announced(
            limit=int(limit) if limit is not None else None,
            remaining=int(remaining) if remaining is not None else None,
            reset_in=reset_seconds(reset, clock()),
        )

    return read
