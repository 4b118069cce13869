"""Two write-backs at once, in two separate Lambda containers (processes), against a sandbox that
throttles BrowserStack by itself per account: with the shared budget the account gets no 429; with
the old per-process limiter it does, and the documented wait (429 without Retry-After: one window)
still brings every result in exactly once.

Time is scaled: BrowserStack's 300 per 60 s are 20 per 2 s in the sandbox and in the relay's settings.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from testrelay_local.runtime import LocalRuntime
from testrelay_local.sandbox import SandboxSeed
from testrelay_local.signing import github_headers
from tests.support import ROOT

PAYLOAD = (ROOT / "events" / "github" / "workflow_run.completed.payload.json").read_bytes()
CASES, LIMIT, WINDOW = 48, 20, 2.0
ROUTES = """
version: 1
routes:
  - name: budget
    match: {repositories: [octo-org/octo-repo], workflows: ["*"]}
    testsigma: {test_plan_id: 1}
    polling: {first_wait_seconds: 0, max_wait_seconds: 1, deadline_seconds: 600}
    targets:
      - kind: browserstack_tm
        name: budget-bs
        project_id: PR-1
        match_by: [id_token]
        batch_size: 3
        cases_per_call: 1000
"""


def _seed() -> SandboxSeed:
    return SandboxSeed.model_validate(
        {
            "test_plans": {
                "1": {
                    "name": "Budget",
                    "cases": [
                        {
                            "testCaseId": 1000 + n,
                            "testCaseName": f"[TC-{n}] case {n}",
                            "testSuiteId": 1,
                            "testSuiteName": "s",
                            "result": "SUCCESS",
                        }
                        for n in range(1, CASES + 1)
                    ],
                }
            },
            "bs_projects": {
                "PR-1": {
                    "name": "Budget",
                    "cases": [{"identifier": f"TC-{n}", "title": f"case {n}"} for n in range(1, CASES + 1)],
                }
            },
        }
    )


@pytest.fixture(params=["shared", "process"])
def runtime(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalRuntime]:
    for name, value in {
        "RATE_BUDGET": request.param,
        "BROWSERSTACK_TM_RATE_LIMIT": str(LIMIT),
        "BROWSERSTACK_TM_RATE_PERIOD_SECONDS": str(WINDOW),
        "BROWSERSTACK_TM_THROTTLE_WAIT_SECONDS": str(WINDOW),
        # At 20 per window the pace's margin must be wider than at 300: one call of quantisation is 5 %
        # of the window, so 0.95 would leave no room for a late wake-up on this loaded machine.
        "BROWSERSTACK_TM_RATE_PACE": "0.8",
    }.items():
        monkeypatch.setenv(name, value)
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES)
    local = LocalRuntime(
        routes_file=routes,
        time_scale=0.0,
        sandbox_seed=_seed(),
        sandbox_run_duration=0,
        containers={"WriteBackFunction": 2},
    )
    with local:
        assert local.sandbox is not None
        # BrowserStack as documented, time-scaled: a 429 without Retry-After, then a window's lockout
        local.sandbox.set_throttle(
            browserstack_tm={"limit": LIMIT, "window_seconds": WINDOW, "lockout_seconds": WINDOW, "retry_after": "none"}
        )
        yield local


def _finished(runtime: LocalRuntime, job_ids: list[str], timeout: float = 240) -> dict[str, str]:
    sfn = runtime.aws.client("stepfunctions")
    deadline = time.monotonic() + timeout
    statuses: dict[str, str] = {}
    while len(statuses) < len(job_ids):
        assert time.monotonic() < deadline, f"jobs still running: {statuses}"
        for job_id in job_ids:
            try:
                status = sfn.describe_execution(executionArn=runtime.execution_arn(job_id))["status"]
            except sfn.exceptions.ExecutionDoesNotExist:
                continue
            if status != "RUNNING":
                statuses[job_id] = status
        time.sleep(0.2)
    return statuses


def test_two_concurrent_write_backs_share_one_budget(runtime: LocalRuntime, request: pytest.FixtureRequest) -> None:
    mode = request.node.callspec.params["runtime"]
    job_ids: list[str] = []
    for _ in range(2):
        headers = github_headers(runtime.webhook_secret, PAYLOAD, "workflow_run", str(uuid.uuid4()))
        answer = requests.post(runtime.webhook_url(), data=PAYLOAD, headers=headers, timeout=10)
        job_ids.extend(answer.json()["jobs"])

    assert set(_finished(runtime, job_ids).values()) == {"SUCCEEDED"}

    assert runtime.sandbox is not None
    # Two containers really ran the write-backs side by side
    assert runtime.pools["WriteBackFunction"].invocations >= 2
    runs: dict[str, Any] = runtime.sandbox.state()["browserstack_tm"]["projects"]["PR-1"]["test_runs"]
    assert len(runs) == 2
    for run in runs.values():
        assert sorted(len(case["results"]) for case in run["test_cases"]) == [1] * CASES  # each once
    [account] = runtime.sandbox.throttle()["browserstack_tm"]["accounts"].values()
    if mode == "shared":
        assert account["throttled"] == 0
        assert account["peak_in_window"] <= LIMIT
    else:
        # The per-process limiter lets the two containers exceed the account's limit together; the
        # documented wait after a 429 without Retry-After still gets every result in, once.
        assert account["throttled"] > 0
