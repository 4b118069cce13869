"""Vendor sessions that can only read: doctor never writes to a vendor, by construction."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from testrelay.sync.rate_limit import RateLimiter
from testrelay.vendors.http import RetryPolicy, VendorSession
from testrelay.vendors.testsigma_tm import is_tm_throttle

# A preflight answers quickly: one retry for a hiccup, never a long wait for a throttle.
DOCTOR_RETRY = RetryPolicy(attempts=2, base_delay=0.2, max_delay=1.0, max_in_call_wait=5.0)


class WriteRefused(AssertionError):
    """A doctor code path tried to send something other than GET: a bug, never sent."""


@dataclass
class ReadOnlySession(VendorSession):
    """A VendorSession that refuses every method but GET before anything leaves the process."""

    def request(
        self,
        method: str,
        path: str,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        repeatable: bool | None = None,
    ) -> Any:
        if method.upper() != "GET" or json is not None:
            raise WriteRefused(f"doctor is read-only: {method} {path} was not sent")
        return super().request("GET", path, params=params)


def bearer_session(
    vendor: str, base_url: str, key: str, timeout: float, limiter: RateLimiter | None = None
) -> ReadOnlySession:
    session = ReadOnlySession(
        vendor, base_url, {"Authorization": f"Bearer {key}"}, timeout=timeout, retry=DOCTOR_RETRY, limiter=limiter
    )
    if vendor == "testsigma-tm":
        session.is_throttle = is_tm_throttle  # its throttle is an HTTP 500
    return session


def basic_session(
    vendor: str, base_url: str, username: str, secret: str, timeout: float, limiter: RateLimiter | None = None
) -> ReadOnlySession:
    token = base64.b64encode(f"{username}:{secret}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    return ReadOnlySession(vendor, base_url, headers, timeout=timeout, retry=DOCTOR_RETRY, limiter=limiter)
