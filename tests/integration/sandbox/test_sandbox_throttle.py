"""The sandbox throttles by itself at the documented limits, per account across every connection,
with each undocumented detail as a knob, and shows what it did through the inspection API."""

from __future__ import annotations

import email.utils
import time

import pytest
import requests

from testrelay_local.sandbox import (
    DEMO_BROWSERSTACK_ACCESS_KEY,
    DEMO_BROWSERSTACK_USERNAME,
    DEMO_BS_PROJECT_ID,
    Sandbox,
)
from tests.integration.sandbox.conftest import Api

RUNS = f"/api/v2/projects/{DEMO_BS_PROJECT_ID}/test-runs"


@pytest.fixture
def bs(sandbox: Sandbox) -> Api:
    return Api(sandbox.browserstack_tm_url, auth=(DEMO_BROWSERSTACK_USERNAME, DEMO_BROWSERSTACK_ACCESS_KEY))


def test_the_defaults_are_the_documented_limits(sandbox: Sandbox) -> None:
    knobs = sandbox.throttle()
    bs, tm = knobs["browserstack_tm"], knobs["testsigma_tm"]
    assert (bs["enabled"], bs["limit"], bs["window_seconds"], bs["status"]) == (True, 300, 60.0, 429)
    assert (bs["retry_after"], bs["lockout_seconds"]) == ("none", 60.0)
    assert (tm["enabled"], tm["limit"], tm["window_seconds"], tm["status"], tm["announce"]) == (
        True,
        10,
        1.0,
        500,
        True,
    )


def test_browserstack_429_carries_no_retry_after_by_default_and_locks_out(sandbox: Sandbox, bs: Api) -> None:
    sandbox.set_throttle(browserstack_tm={"limit": 3, "window_seconds": 0.5, "lockout_seconds": 1.0})
    # Counted per account across connections: three separate sessions share the budget
    answers = [Api(bs.base_url, auth=bs.auth).get(RUNS) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert "Retry-After" not in answers[-1].headers
    assert answers[-1].json() == {"success": False, "message": "rate limit exceeded"}
    time.sleep(0.6)  # the window is over, the lockout is not
    assert bs.get(RUNS).status_code == 429
    time.sleep(0.5)
    assert bs.get(RUNS).status_code == 200
    account = sandbox.throttle()["browserstack_tm"]["accounts"][f"user:{DEMO_BROWSERSTACK_USERNAME}"]
    assert (account["requests"], account["throttled"], account["peak_in_window"]) == (6, 2, 3)
    endpoint = sandbox.state()["requests"]["browserstack_tm"][f"GET {'/api/v2/projects/{project_id}/test-runs'}"]
    assert endpoint["responses"] == {"200": 4, "429": 2}


@pytest.mark.parametrize("form", ["seconds", "http-date"])
def test_the_retry_after_variants(sandbox: Sandbox, bs: Api, form: str) -> None:
    sandbox.set_throttle(browserstack_tm={"limit": 1, "window_seconds": 30, "lockout_seconds": 0, "retry_after": form})
    bs.get(RUNS)
    value = bs.get(RUNS).headers["Retry-After"]
    if form == "seconds":
        assert 29 <= int(value) <= 30
    else:
        assert 28 <= email.utils.parsedate_to_datetime(value).timestamp() - time.time() <= 31


def test_other_accounts_have_their_own_budget(sandbox: Sandbox, bs: Api) -> None:
    sandbox.set_throttle(browserstack_tm={"limit": 1, "window_seconds": 30})
    assert bs.get(RUNS).status_code == 200
    assert Api(bs.base_url, auth=("someone-else", "key")).get(RUNS).status_code == 401  # not throttled: its own
    assert bs.get(RUNS).status_code == 429


@pytest.mark.parametrize(
    ("form", "check"),
    [
        ("epoch_seconds", lambda v, now: 0 < float(v) - now <= 1.01),
        ("epoch_millis", lambda v, now: 0 < float(v) / 1000 - now <= 1.01),
        ("delta_seconds", lambda v, now: 0 <= float(v) <= 1.0),
    ],
)
def test_testsigma_tm_answers_500_over_its_limit_and_announces_it_on_every_answer(
    sandbox: Sandbox, tm: Api, form: str, check: object
) -> None:
    sandbox.set_throttle(
        testsigma_tm={
            "limit": 3,
            "window_seconds": 1.0,
            "counting": "fixed",
            "status": 500,
            "announce": True,
            "reset_format": form,
        }
    )
    # Start right after a window boundary so all four calls fall in one window
    time.sleep(1 - time.time() % 1 + 0.01)
    answers = [tm.get("/users") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 500]
    assert answers[-1].json() == {"message": "rate limit exceeded"}
    assert [a.headers["x-tms-api-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert all(a.headers["x-tms-api-limit"] == "3" for a in answers)
    assert check(answers[0].headers["x-tms-api-reset"], time.time())  # type: ignore[operator]


def test_throttling_can_be_switched_off_and_is_set_over_http(sandbox: Sandbox, bs: Api) -> None:
    answer = requests.post(
        f"{sandbox.base_url}/_sandbox/throttle",
        json={"vendors": {"browserstack_tm": {"enabled": False, "limit": 1}}},
        timeout=5,
    )
    assert answer.status_code == 200
    assert [bs.get(RUNS).status_code for _ in range(3)] == [200, 200, 200]
    refused = requests.post(f"{sandbox.base_url}/_sandbox/throttle", json={"vendors": {"jira": {}}}, timeout=5)
    assert refused.status_code == 400
    sandbox.reset()
    assert sandbox.throttle()["browserstack_tm"]["enabled"] is True
