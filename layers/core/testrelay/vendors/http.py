"""The HTTP session every vendor client uses: time-outs, bounded retries, throttling understood.

Retries here cover short hiccups inside one Lambda invocation. When a vendor asks for a longer pause
than `max_in_call_wait` allows, the error escapes as VendorThrottled so the state machine's Retry
waits instead of a billed Lambda.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3

from testrelay.errors import (
    VendorAuthFailed,
    VendorOutcomeUnknown,
    VendorRejected,
    VendorThrottled,
    VendorUnavailable,
)
from testrelay.observability import emit, logger
from testrelay.sync.rate_limit import Announced, Pacer, RateLimited

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# Statuses that mean "not processed, try again" even for a POST.
SAFE_TO_REPEAT_POST = frozenset({429, 503})


@dataclass
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_in_call_wait: float = 20.0


ThrottleDetector = Callable[[requests.Response], bool]
BudgetReader = Callable[[Mapping[str, str]], Announced | None]


def _is_429(response: requests.Response) -> bool:
    return response.status_code == 429


@dataclass
class VendorSession:
    vendor: str
    base_url: str
    headers: Mapping[str, str]
    timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    is_throttle: ThrottleDetector = _is_429
    limiter: Pacer | None = None
    """Paces every attempt (retries included) to the vendor's documented rate: the account's shared
    budget (`SharedBudget`), or a per-process `RateLimiter`."""
    announced: BudgetReader | None = None
    """Reads the budget a vendor announces on its answers (Testsigma TM's `x-tms-api-*` headers)."""
    throttle_wait: float | None = None
    """The pause a throttle asks for when it carries no Retry-After (BrowserStack: 60 s)."""
    sleep: Callable[[float], None] = time.sleep
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.session.headers.update({"Accept": "application/json", "User-Agent": "testrelay/0.1", **self.headers})

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        repeatable: bool | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one call, retrying what is safe to retry; return the decoded JSON body (or None).

        `repeatable` overrides the method's idempotency for calls whose repetition is harmless
        (a POST that replaces, like a commit status with the same context). `headers` add to the
        session's for this call only (a GitHub App's short-lived JWT)."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        idempotent = method in IDEMPOTENT if repeatable is None else repeatable
        what = f"{method} {path}"
        waited = 0.0
        for attempt in range(1, self.retry.attempts + 1):
            last = attempt == self.retry.attempts
            if self.limiter is not None:
                try:
                    waited += self.limiter.acquire(max(0.0, self.retry.max_in_call_wait - waited))
                except RateLimited as held:
                    # Held back (a pause another call or Lambda was asked for) longer than this call
                    # may wait: the state machine's Retry waits instead of a billed Lambda.
                    raise VendorThrottled(
                        self.vendor, f"{what}: rate budget holds calls back for {held.wait:.0f}s", 429
                    ) from held
            try:
                response = self.session.request(
                    method, url, json=json, params=params, timeout=self.timeout, headers=headers
                )
            except requests.ConnectionError as exc:
                # A connection refused or not made in time never reached the vendor, so even a POST may
                # repeat; one dropped after the request went out may have been processed.
                if not idempotent and not _never_sent(exc):
                    raise VendorOutcomeUnknown(self.vendor, f"{what}: connection lost ({type(exc).__name__})") from exc
                if last:
                    raise VendorUnavailable(self.vendor, f"{what}: {type(exc).__name__}") from exc
                waited += self._pause(attempt, None, what, "connection error")
                continue
            except requests.Timeout as exc:
                # A read time-out may have been processed: repeat only what is idempotent.
                if not idempotent:
                    raise VendorOutcomeUnknown(self.vendor, f"{what}: no answer within {self.timeout}s") from exc
                if last:
                    raise VendorUnavailable(self.vendor, f"{what}: timed out after {self.timeout}s") from exc
                waited += self._pause(attempt, None, what, "time-out")
                continue

            announced = self.announced(response.headers) if self.announced is not None else None
            if announced is not None and self.limiter is not None:
                self.limiter.observe(announced)
            if response.ok:
                return response.json() if response.content else None
            status = response.status_code
            if self.is_throttle(response):
                emit("VendorThrottles", 1, {"vendor": self.vendor}, rollup=True)
                delay = _retry_after(response)
                if delay is None and announced is not None and announced.reset_in is not None:
                    delay = announced.reset_in
                if delay is None:
                    delay = self.throttle_wait
                if delay is not None and self.limiter is not None:
                    # Shared: every concurrent call of the account holds off, not only this one.
                    self.limiter.hold_off(delay)
                if last or (delay is not None and waited + delay > self.retry.max_in_call_wait):
                    raise VendorThrottled(self.vendor, f"{what}: throttled (HTTP {status})", status)
                if delay is not None and self.limiter is not None:
                    emit("VendorRetries", 1, {"vendor": self.vendor}, rollup=True)
                    logger.info("vendor call retried", vendor=self.vendor, call=what, reason="throttled", delay_s=delay)
                    continue  # the limiter's next acquire waits out the pause
                waited += self._pause(attempt, delay, what, f"throttled (HTTP {status})")
                continue
            if status >= 500:
                if not idempotent and status not in SAFE_TO_REPEAT_POST:
                    raise VendorOutcomeUnknown(self.vendor, f"{what}: HTTP {status} {_brief(response)}", status)
                if last:
                    raise VendorUnavailable(self.vendor, f"{what}: HTTP {status} {_brief(response)}", status)
                waited += self._pause(attempt, _retry_after(response), what, f"HTTP {status}")
                continue
            if status in (401, 403):
                raise VendorAuthFailed(self.vendor, f"{what}: HTTP {status}: credentials refused", status)
            rejected = VendorRejected(self.vendor, f"{what}: HTTP {status} {_brief(response)}", status)
            rejected.code = _error_code(response)
            raise rejected
        raise AssertionError("unreachable: the last attempt always returns or raises")

    def _pause(self, attempt: int, requested: float | None, what: str, why: str) -> float:
        backoff = min(self.retry.max_delay, self.retry.base_delay * 2 ** (attempt - 1))
        delay = requested if requested is not None else random.uniform(0, backoff)
        emit("VendorRetries", 1, {"vendor": self.vendor}, rollup=True)
        logger.info("vendor call retried", vendor=self.vendor, call=what, reason=why, delay_s=round(delay, 3))
        self.sleep(delay)
        return delay


def _never_sent(exc: requests.ConnectionError) -> bool:
    """Whether the request cannot have reached the vendor: no connection was made."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.ConnectTimeoutError)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _error_code(response: requests.Response) -> str | None:
    """The machine-readable `error` of a JSON error body (e.g. max_test_cases_per_request_exceeded)."""
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def _brief(response: requests.Response, limit: int = 300) -> str:
    """The vendor's own error message, shortened: enough to act on, never request headers."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:limit].strip()
    if isinstance(body, dict):
        for key in ("message", "error", "errors"):
            if body.get(key):
                return str(body[key])[:limit]
    return str(body)[:limit]
