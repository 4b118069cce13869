"""Fault knobs: throttling in each vendor's own way, server errors, time-outs, latency; faults change nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from testrelay_local.sandbox import (
    DEMO_PLAN_ID,
    DEMO_TM_CASES,
    DEMO_TM_PROJECT_ID,
    DEMO_TM_STATUSES,
    FaultRule,
    Sandbox,
)
from tests.integration.sandbox.conftest import Api

SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
TM_RUNS = f"/projects/{DEMO_TM_PROJECT_ID}/test_runs"


def tm_run(tm: Api) -> str:
    body = {
        "title": "Faults",
        "selection_type": "STATIC",
        "static_selection_filters": [{"field": "id", "operator": "IN", "values": [DEMO_TM_CASES["TC-101"]]}],
    }
    run_id: str = tm.post(TM_RUNS, json=body).json()["data"]["test_run"]["id"]
    return run_id


def test_throttled_testsigma_and_github_answer_429_with_retry_after(
    sandbox: Sandbox, testsigma: Api, github: Api
) -> None:
    # Given every Testsigma and GitHub call is throttled
    sandbox.set_faults(rules=[{"vendor": "testsigma", "kind": "throttle"}, {"vendor": "github", "kind": "throttle"}])

    # When each is called
    triggered = testsigma.post("/execution_results", json={"executionId": DEMO_PLAN_ID})
    posted = github.post(f"/repos/o/r/statuses/{SHA}", json={"state": "success"})

    # Then both answer 429 with Retry-After: 1, in their own error shape
    for response in (triggered, posted):
        assert response.status_code == 429
        assert response.headers["Retry-After"] == "1"
    assert "error" in triggered.json()
    assert "message" in posted.json()


def test_throttled_tm_answers_its_500_rate_limit_quirk(sandbox: Sandbox, tm: Api) -> None:
    # Given Testsigma TM is throttled
    sandbox.set_faults(rules=[FaultRule(vendor="testsigma_tm", kind="throttle")])

    # When it is called
    response = tm.get("/users")

    # Then it answers as the vendor really does: HTTP 500 "rate limit exceeded", with its rate-limit headers
    assert response.status_code == 500
    assert response.json() == {"message": "rate limit exceeded"}
    assert "x-tms-api-remaining" in response.headers


@pytest.mark.parametrize(
    ("vendor", "status"),
    [("testsigma", 503), ("testsigma_tm", 503), ("github", 502)],
)
def test_server_errors_are_plain_text(
    sandbox: Sandbox, testsigma: Api, tm: Api, github: Api, vendor: str, status: int
) -> None:
    # Given one vendor fails with a server error
    sandbox.set_faults(rules=[{"vendor": vendor, "kind": "server_error"}])
    calls: dict[str, Callable[[], requests.Response]] = {
        "testsigma": lambda: testsigma.get("/execution_results/1"),
        "testsigma_tm": lambda: tm.get("/users"),
        "github": lambda: github.get(f"/repos/o/r/commits/{SHA}/status"),
    }

    # When it is called
    response = calls[vendor]()

    # Then it answers that code with a plain body, while the other vendors still answer
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/plain")
    others = [call() for name, call in calls.items() if name != vendor]
    assert all(other.status_code < 500 for other in others)


def test_times_faults_only_the_first_matching_calls(sandbox: Sandbox, testsigma: Api) -> None:
    # Given the first two polls of a run are throttled (other endpoints are left alone)
    run_id = testsigma.post("/execution_results", json={"executionId": DEMO_PLAN_ID}).json()["id"]
    sandbox.set_faults(rules=[{"method": "GET", "path": r"^/execution_results/\d+$", "kind": "throttle", "times": 2}])

    # When the run is polled three times and its case results read once
    codes = [testsigma.get(f"/execution_results/{run_id}").status_code for _ in range(3)]
    cases = testsigma.get(f"/execution_results/{run_id}/test_case_results")

    # Then only the first two polls were throttled
    assert codes == [429, 429, 200]
    assert cases.status_code == 200
    # And the state counts the calls and the injected faults
    state = sandbox.state()
    polls = state["requests"]["testsigma"]["GET /execution_results/{run_id}"]
    assert polls == {"calls": 3, "responses": {"200": 1, "429": 2}, "faults": {"throttle": 2}, "faults_injected": 2}
    assert state["faults"]["rules"][0]["injected"] == 2
    assert state["faults"]["injected"] == {"throttle": 2}


def test_a_faulted_call_changes_nothing(sandbox: Sandbox, testsigma: Api, tm: Api) -> None:
    # Given a TM run, and writes to both vendors failing once
    run_id = tm_run(tm)
    sandbox.set_faults(
        rules=[
            {"vendor": "testsigma", "method": "POST", "kind": "server_error", "times": 1},
            {"vendor": "testsigma_tm", "method": "PUT", "kind": "throttle", "times": 1},
        ]
    )
    update = {"test_case_id": DEMO_TM_CASES["TC-101"], "test_run_status_id": DEMO_TM_STATUSES["Passed"]}

    # When a trigger and a run-case update are each sent twice (a client retrying)
    triggers = [testsigma.post("/execution_results", json={"executionId": DEMO_PLAN_ID}) for _ in range(2)]
    updates = [tm.put(f"{TM_RUNS}/{run_id}/test_cases", json={"test_run_cases": [update]}) for _ in range(2)]

    # Then only the retries took effect: one Testsigma run, one write of the case
    assert [r.status_code for r in triggers] == [503, 200]
    assert [r.status_code for r in updates] == [500, 200]
    state = sandbox.state()
    assert list(state["testsigma"]["runs"]) == [str(triggers[1].json()["id"])]
    run_case = state["testsigma_tm"]["projects"][DEMO_TM_PROJECT_ID]["test_runs"][run_id]["test_run_cases"][0]
    assert (run_case["update_count"], run_case["status_name"]) == (1, "Passed")


def test_a_timed_out_call_hangs_past_the_client_timeout_and_changes_nothing(sandbox: Sandbox, github: Api) -> None:
    # Given GitHub status writes hang for half a second
    sandbox.set_faults(timeout_sleep_s=0.5, rules=[{"vendor": "github", "method": "POST", "kind": "timeout"}])

    # When a client that waits 0.1 s posts a status
    # Then it times out
    with pytest.raises(requests.exceptions.ReadTimeout):
        github.post(f"/repos/o/r/statuses/{SHA}", json={"state": "success"}, timeout=0.1)
    # And nothing was stored
    assert sandbox.state()["github"]["statuses"] == {}


def test_a_patient_client_gets_a_504_after_the_hang(sandbox: Sandbox, github: Api) -> None:
    # Given GitHub status writes hang for 0.2 s
    sandbox.set_faults(timeout_sleep_s=0.2, rules=[{"vendor": "*", "path": "/statuses/", "kind": "timeout"}])

    # When a client waits longer than that
    started = time.monotonic()
    response = github.post(f"/repos/o/r/statuses/{SHA}", json={"state": "success"})

    # Then it gets a gateway time-out once the hang is over, and nothing was stored
    assert time.monotonic() - started >= 0.2
    assert response.status_code == 504
    assert sandbox.state()["github"]["statuses"] == {}
    assert sandbox.state()["faults"]["injected"] == {"timeout": 1}


def test_latency_is_added_to_every_answer(sandbox: Sandbox, tm: Api) -> None:
    # Given 100 ms of latency
    sandbox.set_faults(latency_ms=100)

    # When a quick endpoint is called
    started = time.monotonic()
    response = tm.get("/users")

    # Then the answer is right but late
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.1


def _fault_pattern(sandbox: Sandbox, tm: Api, rule: dict[str, Any]) -> list[bool]:
    sandbox.set_faults(rules=[rule])
    sandbox.set_throttle(testsigma_tm={"enabled": False})  # 40 quick calls: only the rule's faults
    return [tm.get("/users").status_code == 500 for _ in range(40)]


def test_rate_faults_a_share_of_calls_the_same_way_each_time(sandbox: Sandbox, tm: Api) -> None:
    # Given a rule throttling about a third of the calls, with a fixed seed
    rule = {"vendor": "testsigma_tm", "kind": "throttle", "rate": 0.3, "seed": 7}

    # When the same calls are made twice, the knobs set afresh in between
    first = _fault_pattern(sandbox, tm, rule)
    second = _fault_pattern(sandbox, tm, rule)

    # Then some, not all, calls were faulted, and both times the same ones
    assert 0 < sum(first) < len(first)
    assert first == second
    # And another seed draws another pattern
    assert _fault_pattern(sandbox, tm, {**rule, "seed": 8}) != first


def test_faults_are_set_over_http_too(sandbox: Sandbox, control: Api, testsigma: Api) -> None:
    # Given knobs posted to the control endpoint
    knobs = {
        "latency_ms": 0,
        "timeout_sleep_s": 5,
        "rules": [
            {"vendor": "testsigma", "method": "POST", "path": "^/execution_results$", "kind": "throttle", "times": 1}
        ],
    }
    answer = control.post("/faults", json=knobs)

    # When the matching endpoint is called twice
    codes = [testsigma.post("/execution_results", json={"executionId": DEMO_PLAN_ID}).status_code for _ in range(2)]

    # Then the knobs were taken and acted on
    assert answer.status_code == 200
    assert answer.json()["rules"][0]["times"] == 1
    assert codes == [429, 200]


@pytest.mark.parametrize(
    "knobs",
    [
        {"rules": [{"kind": "explode"}]},
        {"rules": [{"kind": "throttle", "vendor": "jira"}]},
        {"rules": [{"kind": "throttle", "rate": 1.5}]},
        {"rules": [{"kind": "throttle", "path": "("}]},
        {"latency_ms": -1},
        {"surprise": True},
    ],
)
def test_invalid_knobs_are_refused_naming_the_problem(sandbox: Sandbox, control: Api, knobs: dict[str, Any]) -> None:
    # Given knobs the sandbox does not understand
    # When they are posted
    response = control.post("/faults", json=knobs)

    # Then they are refused with the validation errors, and the previous (no) faults stay
    assert response.status_code == 400
    assert response.json()["errors"]
    assert sandbox.state()["faults"]["rules"] == []


def test_reset_clears_the_faults(sandbox: Sandbox, tm: Api) -> None:
    # Given every TM call throttled
    sandbox.set_faults(rules=[{"kind": "throttle"}])
    assert tm.get("/users").status_code == 500

    # When the sandbox is reset
    sandbox.reset()

    # Then calls go through again
    assert tm.get("/users").status_code == 200


def test_a_lost_answer_is_applied_then_answered_504_or_dropped(sandbox: Sandbox, tm: Api) -> None:
    # Given a TM run, and its case updates applied but their answers lost: a 504, then a dropped connection
    run_id = tm_run(tm)
    sandbox.set_faults(
        rules=[
            {"vendor": "testsigma_tm", "method": "PUT", "kind": "lost_answer", "times": 1},
            {"vendor": "testsigma_tm", "method": "PUT", "kind": "lost_connection", "times": 1},
        ]
    )
    update = {"test_case_id": DEMO_TM_CASES["TC-101"], "test_run_status_id": DEMO_TM_STATUSES["Passed"]}

    # When the update is sent twice
    first = tm.put(f"{TM_RUNS}/{run_id}/test_cases", json={"test_run_cases": [update]})
    with pytest.raises(requests.exceptions.ConnectionError):
        tm.put(f"{TM_RUNS}/{run_id}/test_cases", json={"test_run_cases": [update]})

    # Then the first answered 504, the second none, and both were applied
    assert first.status_code == 504
    state = sandbox.state()
    run_case = state["testsigma_tm"]["projects"][DEMO_TM_PROJECT_ID]["test_runs"][run_id]["test_run_cases"][0]
    assert (run_case["update_count"], run_case["status_name"]) == (2, "Passed")
    assert state["faults"]["injected"] == {"lost_answer": 1, "lost_connection": 1}


def test_a_true_500_after_n_calls_changes_nothing(sandbox: Sandbox, testsigma: Api) -> None:
    # Given Testsigma triggers failing with a true 500 after two calls, twice
    sandbox.set_faults(
        rules=[{"vendor": "testsigma", "method": "POST", "kind": "internal_error", "after": 2, "times": 2}]
    )

    # When five triggers are sent
    answers = [testsigma.post("/execution_results", json={"executionId": DEMO_PLAN_ID}) for _ in range(5)]

    # Then the first two passed, the next two failed unapplied, the fifth passed again: three runs
    assert [a.status_code for a in answers] == [200, 200, 500, 500, 200]
    assert len(sandbox.state()["testsigma"]["runs"]) == 3
