"""The shared vendor HTTP session: what is retried, what waits, what fails at once."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pytest
import requests
import urllib3
from requests.adapters import BaseAdapter

from testrelay.errors import (
    VendorAuthFailed,
    VendorOutcomeUnknown,
    VendorRejected,
    VendorThrottled,
    VendorUnavailable,
)
from testrelay.vendors.http import RetryPolicy, VendorSession
from testrelay.vendors.testsigma_tm import is_tm_throttle

Answer = tuple[int, Any, dict[str, str]] | type[Exception] | Exception


class ScriptedAdapter(BaseAdapter):
    """Answers from a script instead of the network, and records what was sent."""

    def __init__(self, answers: Iterable[Answer]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, type):
            raise answer("scripted")
        if isinstance(answer, Exception):
            raise answer
        status, body, headers = answer
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode() if body is not None else b""
        response.headers.update(headers)
        response.request = request
        response.url = request.url or ""
        return response

    def close(self) -> None:
        pass


def _session(answers: Iterable[Answer], **kwargs: Any) -> tuple[VendorSession, ScriptedAdapter, list[float]]:
    adapter = ScriptedAdapter(answers)
    http = requests.Session()
    http.mount("https://", adapter)
    sleeps: list[float] = []
    session = VendorSession(
        "vendor",
        "https://vendor.test/api",
        {"Authorization": "Bearer sk-live-123"},
        session=http,
        sleep=sleeps.append,
        retry=RetryPolicy(attempts=4, base_delay=0.5, max_delay=4, max_in_call_wait=20),
        **kwargs,
    )
    return session, adapter, sleeps


def test_429_waits_as_long_as_retry_after_asks_then_succeeds() -> None:
    session, adapter, sleeps = _session([(429, {}, {"Retry-After": "3"}), (200, {"ok": True}, {})])
    assert session.request("GET", "/things") == {"ok": True}
    assert sleeps == [3.0]
    assert len(adapter.sent) == 2


def test_a_wait_longer_than_the_call_may_spend_is_left_to_the_state_machine() -> None:
    session, adapter, _ = _session([(429, {}, {"Retry-After": "60"})])
    with pytest.raises(VendorThrottled, match="throttled"):
        session.request("GET", "/things")
    assert len(adapter.sent) == 1


def test_testsigma_tm_500_rate_limit_is_a_throttle_even_for_post() -> None:
    session, adapter, sleeps = _session(
        [(500, {"message": "rate limit exceeded"}, {}), (200, {"data": 1}, {})], is_throttle=is_tm_throttle
    )
    assert session.request("POST", "/runs", json={}) == {"data": 1}
    assert len(adapter.sent) == 2
    assert len(sleeps) == 1


def test_other_500s_are_not_throttles() -> None:
    response = requests.Response()
    response.status_code = 500
    response._content = b'{"message": "NullPointerException"}'
    assert not is_tm_throttle(response)


def test_idempotent_calls_retry_5xx_and_give_up_as_unavailable() -> None:
    session, adapter, sleeps = _session([(502, {"message": "bad gateway"}, {})] * 4)
    with pytest.raises(VendorUnavailable, match="HTTP 502 bad gateway"):
        session.request("GET", "/things")
    assert len(adapter.sent) == 4
    assert len(sleeps) == 3
    assert all(0 <= s <= 4 for s in sleeps)


def test_a_post_that_may_have_happened_is_never_repeated() -> None:
    session, adapter, _ = _session([(500, {"message": "oops"}, {})])
    with pytest.raises(VendorOutcomeUnknown):
        session.request("POST", "/execution_results", json={"executionId": 1})
    assert len(adapter.sent) == 1
    session, adapter, _ = _session([requests.ReadTimeout])
    with pytest.raises(VendorOutcomeUnknown, match="no answer"):
        session.request("POST", "/execution_results", json={"executionId": 1})
    assert len(adapter.sent) == 1


def test_a_post_that_never_reached_the_vendor_is_repeated() -> None:
    refused = requests.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, "/", urllib3.exceptions.NewConnectionError(None, "refused"))  # type: ignore[arg-type]
    )
    for never_sent in (requests.ConnectTimeout, refused):
        session, adapter, _ = _session([never_sent, (200, {"id": 7}, {})])
        assert session.request("POST", "/execution_results", json={}) == {"id": 7}
        assert len(adapter.sent) == 2


def test_a_post_whose_connection_dropped_after_sending_is_not_repeated() -> None:
    dropped = requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError()))
    session, adapter, _ = _session([dropped, (200, {"id": 7}, {})])
    with pytest.raises(VendorOutcomeUnknown, match="connection lost"):
        session.request("POST", "/execution_results", json={})
    assert len(adapter.sent) == 1
    # A GET may repeat either way
    session, adapter, _ = _session([dropped, (200, {"id": 7}, {})])
    assert session.request("GET", "/execution_results/7") == {"id": 7}


def test_refused_credentials_and_bad_requests_fail_at_once_without_leaking_the_key() -> None:
    session, _, _ = _session([(401, {"message": "bad key"}, {})])
    with pytest.raises(VendorAuthFailed) as auth:
        session.request("GET", "/things")
    session, _, _ = _session([(422, {"message": "title is required"}, {})])
    with pytest.raises(VendorRejected, match="HTTP 422 title is required") as rejected:
        session.request("POST", "/runs", json={})
    for error in (auth.value, rejected.value):
        assert "sk-live-123" not in str(error)


def test_a_post_marked_repeatable_is_retried_like_a_put() -> None:
    session, adapter, _ = _session([(502, {"message": "bad gateway"}, {}), (201, {"id": 1}, {})])
    assert session.request("POST", "/statuses/abc", json={}, repeatable=True) == {"id": 1}
    assert len(adapter.sent) == 2
