"""A client-side limiter: calls are paced so no window of `period` seconds holds more than `limit`.

Pacing (one call every period/limit seconds) rather than bursting keeps the vendor's own window
counter from ever seeing more than the limit, whichever way it aligns its windows. One limiter is
shared by every session of the same account in the process (see `shared_limiter`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RateLimiter:
    limit: int
    period: float = 60.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _next_slot: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    calls: int = 0
    waited: float = 0.0

    @property
    def interval(self) -> float:
        return self.period / self.limit

    def acquire(self) -> None:
        """Blocks until the next call may go out."""
        with self._lock:
            now = self.clock()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
            self.calls += 1
            delay = slot - now
            self.waited += delay
        if delay > 0:
            self.sleep(delay)

    def hold_off(self, seconds: float) -> None:
        """The vendor asked for a pause (429 + Retry-After): nobody sends before it ends."""
        with self._lock:
            self._next_slot = max(self._next_slot, self.clock() + seconds)


_shared: dict[tuple[str, str, int], RateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter(scope: str, account: str, limit: int, period: float = 60.0) -> RateLimiter:
    """The process-wide limiter of one vendor account (`account` is a non-secret identity, e.g. a user name)."""
    with _shared_lock:
        key = (scope, account, limit)
        limiter = _shared.get(key)
        if limiter is None:
            limiter = _shared[key] = RateLimiter(limit, period)
        return limiter
