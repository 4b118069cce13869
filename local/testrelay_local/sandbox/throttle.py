"""Self-throttling at the vendors' documented limits, counted per account across every connection.

The knobs are per vendor; the defaults are the documented behaviour:

- BrowserStack Test Management: 300 requests per 60 s per account; over it a 429 and the caller
  must wait 60 s (a refusal during those 60 s is another 429: `lockout_seconds`). No Retry-After is
  documented, so by default none is sent; `retry_after: seconds` / `http-date` are the variants.
- Testsigma Test Management: about 10 requests per second, announced on every answer in
  `x-tms-api-limit` / `x-tms-api-remaining` / `x-tms-api-reset`; over it HTTP 500
  `{"message": "rate limit exceeded"}`. The reset header's form is not documented: epoch seconds
  (default), epoch milliseconds or seconds from now (`reset_format`).

Windows are sliding (`counting: sliding`, the strictest reading) or fixed and aligned on the clock
(`counting: fixed`). Time can be scaled by giving a short `window_seconds` (and `lockout_seconds`).
"""

from __future__ import annotations

import base64
import binascii
import collections
import email.utils
import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from testrelay_local.sandbox.messages import Request, Response
from testrelay_local.sandbox.vendor import VendorApi, VendorName


class VendorThrottle(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    limit: int = Field(ge=1)
    window_seconds: float = Field(gt=0)
    counting: Literal["sliding", "fixed"] = "sliding"
    lockout_seconds: float = Field(default=0.0, ge=0, description="after a throttle, refuse everything this long")
    status: int = Field(default=429, ge=400, le=599)
    message: str = "rate limit exceeded"
    retry_after: Literal["none", "seconds", "http-date"] = "none"
    announce: bool = Field(default=False, description="x-tms-api-limit/-remaining/-reset on every answer")
    reset_format: Literal["epoch_seconds", "epoch_millis", "delta_seconds"] = "epoch_seconds"


def documented() -> dict[VendorName, VendorThrottle]:
    return {
        "browserstack_tm": VendorThrottle(limit=300, window_seconds=60.0, lockout_seconds=60.0, status=429),
        "testsigma_tm": VendorThrottle(limit=10, window_seconds=1.0, counting="fixed", status=500, announce=True),
    }


class ThrottleSettings(BaseModel):
    """`POST /_sandbox/throttle`: per vendor, the knobs given replace those in force (the others stay;
    `{"testsigma_tm": {"enabled": false}}` switches one off), and every counter restarts."""

    model_config = ConfigDict(extra="forbid")

    vendors: dict[VendorName, dict[str, Any]] = Field(default_factory=dict)

    def applied_to(self, current: dict[VendorName, VendorThrottle]) -> dict[VendorName, VendorThrottle]:
        """The knobs in force after this change; raises ValidationError naming a bad knob."""
        merged = dict(current)
        for vendor, knobs in self.vendors.items():
            base = current[vendor].model_dump() if vendor in current else {}
            merged[vendor] = VendorThrottle.model_validate({**base, **knobs})
        return merged


@dataclass
class _Account:
    arrivals: collections.deque[float] = field(default_factory=collections.deque)
    window_start: float = 0.0
    window_count: int = 0
    locked_until: float = 0.0
    requests: int = 0
    throttled: int = 0
    peak_in_window: int = 0
    first: float | None = None
    last: float = 0.0
    per_window: dict[int, int] = field(default_factory=dict)
    """Accepted calls per clock-aligned window (index = floor(time / window_seconds))."""

    def view(self) -> dict[str, Any]:
        span = self.last - self.first if self.first is not None else 0.0
        return {
            "requests": self.requests,
            "accepted": self.requests - self.throttled,
            "throttled": self.throttled,
            "peak_in_window": self.peak_in_window,
            "span_s": round(span, 3),
            "per_window": [[index, count] for index, count in sorted(self.per_window.items())],
        }


def account_of(request: Request) -> str:
    """Who a call counts against: the Basic user name, or a short hash of a Bearer token (never the token)."""
    basic = request.credentials("Basic")
    if basic:
        try:
            return "user:" + base64.b64decode(basic, validate=True).decode().partition(":")[0]
        except (binascii.Error, UnicodeDecodeError):
            return "anonymous"
    bearer = request.credentials("Bearer")
    if bearer:
        return "token:" + hashlib.sha256(bearer.encode()).hexdigest()[:8]
    return "anonymous"


class Throttle:
    """Not thread-safe: the sandbox calls it under its lock."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.settings: dict[VendorName, VendorThrottle] = documented()
        self._accounts: dict[str, dict[str, _Account]] = {}

    def configure(self, settings: ThrottleSettings) -> None:
        self.settings = settings.applied_to(self.settings)
        self._accounts = {}

    def reset(self) -> None:
        self.settings = documented()
        self._accounts = {}

    def admit(self, vendor: VendorApi, request: Request) -> tuple[Response | None, dict[str, str]]:
        """A throttle answer for this call, or None to serve it; and the headers every answer gets."""
        knobs = self.settings.get(vendor.name)
        if knobs is None or not knobs.enabled:
            return None, {}
        now = self._clock()
        account = self._accounts.setdefault(vendor.name, {}).setdefault(account_of(request), _Account())
        account.requests += 1
        account.first = now if account.first is None else account.first
        account.last = now
        count, reset_at = self._count(knobs, account, now)
        over = now < account.locked_until or count >= knobs.limit
        if not over:
            count += 1
            if knobs.counting == "sliding":
                account.arrivals.append(now)
            else:
                account.window_count = count
            account.peak_in_window = max(account.peak_in_window, count)
            index = math.floor(now / knobs.window_seconds)
            account.per_window[index] = account.per_window.get(index, 0) + 1
        headers = self._announced(knobs, count, reset_at, now) if knobs.announce else {}
        if not over:
            return None, headers
        account.throttled += 1
        if knobs.lockout_seconds and now >= account.locked_until:
            account.locked_until = now + knobs.lockout_seconds
        wait = max(account.locked_until, reset_at) - now
        response = vendor.error(knobs.status, knobs.message)
        if knobs.retry_after == "seconds":
            response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        elif knobs.retry_after == "http-date":
            response.headers["Retry-After"] = email.utils.formatdate(now + wait, usegmt=True)
        return response, headers

    @staticmethod
    def _count(knobs: VendorThrottle, account: _Account, now: float) -> tuple[int, float]:
        """Calls in the current window and when a place frees up."""
        if knobs.counting == "sliding":
            while account.arrivals and now - account.arrivals[0] >= knobs.window_seconds:
                account.arrivals.popleft()
            frees = account.arrivals[0] + knobs.window_seconds if account.arrivals else now
            return len(account.arrivals), frees
        start = math.floor(now / knobs.window_seconds) * knobs.window_seconds
        if start != account.window_start:
            account.window_start, account.window_count = start, 0
        return account.window_count, start + knobs.window_seconds

    @staticmethod
    def _announced(knobs: VendorThrottle, count: int, reset_at: float, now: float) -> dict[str, str]:
        if knobs.reset_format == "epoch_millis":
            reset = str(int(reset_at * 1000))
        elif knobs.reset_format == "delta_seconds":
            reset = f"{max(0.0, reset_at - now):.3f}"
        else:
            reset = str(math.ceil(reset_at))
        return {
            "x-tms-api-limit": str(knobs.limit),
            "x-tms-api-remaining": str(max(0, knobs.limit - count)),
            "x-tms-api-reset": reset,
        }

    def snapshot(self) -> dict[str, Any]:
        return {
            vendor: {
                **knobs.model_dump(),
                "accounts": {name: account.view() for name, account in self._accounts.get(vendor, {}).items()},
                "throttled": sum(a.throttled for a in self._accounts.get(vendor, {}).values()),
            }
            for vendor, knobs in self.settings.items()
        }
