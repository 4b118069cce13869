"""Control API, seeds, lifecycle and the command line of the vendor sandbox."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import requests

from testrelay_local.sandbox import (
    DEMO_PLAN_CASES,
    DEMO_PLAN_ID,
    DEMO_TESTSIGMA_API_KEY,
    DEMO_TM_CASES,
    DEMO_TM_PROJECT_ID,
    DEMO_TM_STATUSES,
    Sandbox,
    SandboxSeed,
)
from tests.integration.sandbox.conftest import Api

ONE_PLAN_SEED: dict[str, Any] = {
    "testsigma_api_key": "other-key",
    "test_plans": {
        "7": {
            "name": "Smoke",
            "cases": [
                {"testCaseId": 1, "testCaseName": "a", "testSuiteId": 1, "testSuiteName": "s", "result": "SUCCESS"}
            ],
        }
    },
}


def test_demo_seed_ties_plan_cases_to_tm_cases() -> None:
    # Given the demo seed
    seed = SandboxSeed.demo()

    # Then each plan case names a TM case of the demo project, and the outcomes are 4 passed, 1 failed, 1 skipped
    plan = seed.test_plans[DEMO_PLAN_ID]
    project = seed.tm_projects[DEMO_TM_PROJECT_ID]
    tm_ids = {case.human_id: case.id for case in project.cases}
    assert tm_ids == DEMO_TM_CASES
    for case in plan.cases:
        human_id = case.testCaseName[1:7]
        assert DEMO_PLAN_CASES[human_id] == case.testCaseId
        assert human_id in tm_ids
    assert sorted(case.result for case in plan.cases) == ["FAILURE", "NOT_EXECUTED"] + ["SUCCESS"] * 4
    assert {status.name: status.id for status in seed.tm_run_statuses} == DEMO_TM_STATUSES
    # And it survives a JSON round trip, so it can be written to a seed file
    assert SandboxSeed.model_validate_json(seed.model_dump_json()) == seed


def test_state_over_http_is_what_state_returns(sandbox: Sandbox, control: Api, testsigma: Api) -> None:
    # Given some activity
    testsigma.post("/execution_results", json={"executionId": DEMO_PLAN_ID})

    # When the state is read both ways
    over_http = control.get("/state").json()

    # Then both are the same document, covering every vendor, the counters and the knobs
    assert over_http == sandbox.state()
    assert set(over_http) == {
        "run_duration",
        "run_durations",
        "testsigma",
        "testsigma_tm",
        "github",
        "gitlab",
        "bitbucket",
        "browserstack_tm",
        "requests",
        "faults",
        "throttle",
        "request_times",
        "config",
    }


def test_posting_a_seed_replaces_the_data(sandbox: Sandbox, control: Api, testsigma: Api) -> None:
    # Given a run of the demo plan
    testsigma.post("/execution_results", json={"executionId": DEMO_PLAN_ID})

    # When a seed with one other plan and another key is posted
    response = control.post("/seed", json=ONE_PLAN_SEED)

    # Then only that plan exists, under the new key, and earlier runs are gone
    assert response.status_code == 200
    other = Api(testsigma.base_url, {"Authorization": "Bearer other-key"})
    assert testsigma.post("/execution_results", json={"executionId": 7}).status_code == 401
    assert other.post("/execution_results", json={"executionId": DEMO_PLAN_ID}).status_code == 404
    assert other.post("/execution_results", json={"executionId": 7}).status_code == 200
    state = sandbox.state()["testsigma"]
    assert list(state["test_plans"]) == ["7"]
    assert [run["executionId"] for run in state["runs"].values()] == [7]


def test_an_invalid_seed_is_refused_and_the_data_kept(sandbox: Sandbox, control: Api) -> None:
    # Given the demo data
    # When a seed with a plan case missing its result is posted
    broken = {"test_plans": {"1": {"name": "p", "cases": [{"testCaseId": 1}]}}}
    response = control.post("/seed", json=broken)

    # Then it is refused with the validation errors, and the demo plan is still served
    assert response.status_code == 400
    assert any("result" in error["loc"] for error in response.json()["errors"])
    assert str(DEMO_PLAN_ID) in sandbox.state()["testsigma"]["test_plans"]


def test_reset_returns_to_the_current_seed_with_no_activity(sandbox: Sandbox, control: Api) -> None:
    # Given a posted seed and a run of its plan
    control.post("/seed", json=ONE_PLAN_SEED)
    other = Api(sandbox.testsigma_url, {"Authorization": "Bearer other-key"})
    other.post("/execution_results", json={"executionId": 7})

    # When the sandbox is reset over HTTP
    assert control.post("/reset").status_code == 200

    # Then the posted seed's plan is still there, but no run and no counted call
    state = sandbox.state()
    assert list(state["testsigma"]["test_plans"]) == ["7"]
    assert state["testsigma"]["runs"] == {}
    assert state["requests"] == {}


def test_unknown_paths_are_404(sandbox: Sandbox, control: Api) -> None:
    # Given paths outside every vendor and control endpoint
    # When they are called
    outside = requests.get(f"{sandbox.base_url}/jira/api/2/issue", timeout=5)
    unknown_control = control.get("/nothing")

    # Then both are not found, saying where things live
    assert outside.status_code == 404
    assert "/testsigma/api/v1" in outside.json()["message"]
    assert unknown_control.status_code == 404
    assert "GET /_sandbox/state" in unknown_control.json()["endpoints"]


def test_a_seed_can_be_given_as_a_dict_and_the_sandbox_used_as_a_context_manager() -> None:
    # Given a sandbox built from a plain dict
    with Sandbox(ONE_PLAN_SEED, run_duration=0) as sandbox:
        base = sandbox.base_url
        client = Api(sandbox.testsigma_url, {"Authorization": "Bearer other-key"})

        # When its plan is triggered
        response = client.post("/execution_results", json={"executionId": 7})

        # Then it runs
        assert response.status_code == 200
        assert sandbox.testsigma_url == f"{base}/testsigma/api/v1"
        assert sandbox.testsigma_tm_url == f"{base}/testsigma-tm/api/v1"
        assert sandbox.github_url == f"{base}/github"

    # And once stopped it no longer answers
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{base}/_sandbox/state", timeout=1)


def test_a_stopped_sandbox_frees_a_client_stuck_in_a_timeout() -> None:
    # Given a sandbox whose calls hang for a minute, and a client waiting on one
    sandbox = Sandbox(run_duration=0)
    sandbox.start()
    sandbox.set_faults(timeout_sleep_s=60, rules=[{"kind": "timeout"}])
    client = Api(sandbox.testsigma_url, {"Authorization": f"Bearer {DEMO_TESTSIGMA_API_KEY}"})

    # When the sandbox is stopped while the call hangs
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(client.get("/execution_results/1").status_code)
        except requests.exceptions.ConnectionError as exc:
            outcome.append(exc)

    waiting = threading.Thread(target=call)
    waiting.start()
    threading.Timer(0.1, sandbox.stop).start()
    waiting.join(timeout=5)

    # Then the client is released at once, answered or disconnected
    assert not waiting.is_alive()
    assert outcome[0] == 504 or isinstance(outcome[0], requests.exceptions.ConnectionError)


def test_a_restarted_sandbox_serves_again() -> None:
    # Given a sandbox stopped once
    sandbox = Sandbox(run_duration=0)
    sandbox.start()
    sandbox.stop()

    # When it is started again, with latency set
    base = sandbox.start()
    try:
        sandbox.set_faults(latency_ms=50)
        started = time.monotonic()
        response = requests.get(f"{base}/testsigma/api/v1/execution_results/1", timeout=5)

        # Then it answers, and the latency applies again
        assert response.status_code == 401
        assert time.monotonic() - started >= 0.05
    finally:
        sandbox.stop()


def test_command_line_serves_until_interrupted() -> None:
    # Given the sandbox started from the command line on a free port
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    with subprocess.Popen(
        [sys.executable, "-m", "testrelay_local.sandbox", "--port", "0", "--run-duration", "0", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        try:
            assert process.stdout is not None
            base = process.stdout.readline().split(" at ")[1].strip()
            # the banner ends with the line that says Ctrl-C stops it: from then on it is serving
            while "Ctrl-C stops" not in process.stdout.readline():
                pass

            # When its state is read
            response = requests.get(f"{base}/_sandbox/state", timeout=5)

            # Then it serves the demo data
            assert response.status_code == 200
            assert str(DEMO_PLAN_ID) in response.json()["testsigma"]["test_plans"]
        finally:
            # And Ctrl-C stops it cleanly
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=10) == 0
