"""Write-back pacing through the whole local runtime: several vendor calls in flight, time slices of the
real state machine, and the sandbox's own throttle: Test Management's documented 10 per second (500 "rate
limit exceeded" over it), BrowserStack's 429 and one-window lockout time-scaled to 60 per 3 s (paced at
0.9: at 60 calls a window the jitter of a loaded machine's loopback is a larger share of the margin the
pace leaves than at the real 300 per 60 s).

Judged where the vendor would see it: the sandbox's counted 429s/500s and its per-window arrivals, and the
rows it holds; plus the execution history (the slices the state machine looped through)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from testrelay_local.runtime import LocalRuntime, reset_process_caches
from testrelay_local.samples import TM_STATUS_IDS_YAML
from testrelay_local.sandbox import SandboxSeed
from testrelay_local.sandbox.seed import BsCaseSeed, BsProjectSeed, PlanCaseSeed, PlanSeed, TmCaseSeed, TmProjectSeed
from testrelay_local.signing import github_headers
from tests.support import ROOT, history, tm_run_cases, wait_for_execution

PAYLOAD = (ROOT / "events" / "github" / "workflow_run.completed.payload.json").read_bytes()
PLAN_ID, TM_PROJECT, BS_PROJECT = 1, "tm-pacing", "PR-7"
CASES = 90
BS_WINDOW, TM_WINDOW = 3.0, 1.0
BS_LIMIT, TM_LIMIT = 60, 10
ROUTES = f"""
version: 1
routes:
  - name: pacing
    match: {{repositories: [octo-org/octo-repo], workflows: ["*"]}}
    testsigma: {{test_plan_id: {PLAN_ID}}}
    polling: {{first_wait_seconds: 0, max_wait_seconds: 1, deadline_seconds: 600}}
    targets:
      - kind: browserstack_tm
        name: bs
        project_id: {BS_PROJECT}
        match_by: [id_token]
        cases_per_call: 5000
      - kind: testsigma_tm
        name: tm
        project_id: {TM_PROJECT}
        match_by: [id_token]
        batch_size: 1
        status_ids:
{TM_STATUS_IDS_YAML}
"""


def _seed() -> SandboxSeed:
    demo = SandboxSeed.demo()
    cases = range(1, CASES + 1)
    return demo.model_copy(
        update={
            "test_plans": {
                PLAN_ID: PlanSeed(
                    name="Pacing",
                    cases=[
                        PlanCaseSeed(
                            testCaseId=10_000 + n,
                            testCaseName=f"[TC-{n}] case {n}",
                            testSuiteId=1,
                            testSuiteName="suite",
                            result="SUCCESS" if n % 2 else "FAILURE",
                        )
                        for n in cases
                    ],
                )
            },
            "tm_projects": {
                TM_PROJECT: TmProjectSeed(
                    name="Pacing",
                    cases=[TmCaseSeed(id=f"tm-{n}", human_id=f"TC-{n}", title=f"case {n}") for n in cases],
                )
            },
            "bs_projects": {
                BS_PROJECT: BsProjectSeed(
                    name="Pacing", cases=[BsCaseSeed(identifier=f"TC-{n}", title=f"case {n}") for n in cases]
                )
            },
            "bs_async_delay_s": 0.0,
        }
    )


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    routes = tmp_path_factory.mktemp("routes") / "routes.yaml"
    routes.write_text(ROUTES)
    with pytest.MonkeyPatch.context() as env:
        # BrowserStack's limit scaled, told to the relay as to the sandbox; slices of two seconds, so the
        # write-back loops through the state machine several times.
        env.setenv("BROWSERSTACK_TM_RATE_LIMIT", str(BS_LIMIT))
        env.setenv("BROWSERSTACK_TM_RATE_PERIOD_SECONDS", str(BS_WINDOW))
        env.setenv("BROWSERSTACK_TM_THROTTLE_WAIT_SECONDS", str(BS_WINDOW))
        env.setenv("BROWSERSTACK_TM_RATE_PACE", "0.9")
        env.setenv("WRITE_BACK_SLICE_SECONDS", "2")
        env.setenv("WRITE_BACK_IN_FLIGHT", "4")
        with LocalRuntime(
            routes_file=Path(routes), time_scale=0.0, sandbox_run_duration=0, sandbox_seed=_seed()
        ) as runtime:
            yield runtime


def _deliver(runtime: LocalRuntime) -> str:
    headers = github_headers(runtime.webhook_secret, PAYLOAD, "workflow_run", str(uuid.uuid4()))
    answer = requests.post(runtime.webhook_url("github"), data=PAYLOAD, headers=headers, timeout=10)
    assert answer.status_code == 202, answer.text
    [job_id] = answer.json()["jobs"]
    return str(job_id)


def _throttle_views(runtime: LocalRuntime) -> dict[str, dict[str, Any]]:
    assert runtime.sandbox is not None
    views: dict[str, dict[str, Any]] = {}
    for vendor, view in runtime.sandbox.throttle().items():
        [account] = view["accounts"].values()
        views[vendor] = account
    return views


def test_pipelined_slices_keep_within_the_budget_and_write_every_result_once(runtime: LocalRuntime) -> None:
    # Given both vendors throttling by themselves at their (scaled) limits: BrowserStack a 429 and a
    # one-window lockout, Test Management a 500 "rate limit exceeded", windows aligned on the clock
    assert runtime.sandbox is not None
    reset_process_caches()
    runtime.sandbox.set_throttle(
        browserstack_tm={"limit": BS_LIMIT, "window_seconds": BS_WINDOW, "lockout_seconds": BS_WINDOW},
        testsigma_tm={"limit": TM_LIMIT, "window_seconds": TM_WINDOW},
    )
    # When a delivery's results are written one per call (BrowserStack's documented form; TM batches of
    # one), with four calls in flight, in slices of two seconds
    job_id = _deliver(runtime)
    execution = wait_for_execution(runtime, job_id, timeout=240)
    # Then the job succeeds and every case holds exactly one result at each vendor
    assert execution["status"] == "SUCCEEDED"
    state = runtime.sandbox.state()
    [bs_run] = state["browserstack_tm"]["projects"][BS_PROJECT]["test_runs"].values()
    assert sorted(len(case["results"]) for case in bs_run["test_cases"]) == [1] * CASES
    [tm_run] = tm_run_cases(runtime).values()
    assert sorted(case["update_count"] for case in tm_run["test_run_cases"]) == [1] * CASES
    # And neither vendor throttled us once, and no window saw more calls than its limit
    views = _throttle_views(runtime)
    for vendor, limit in (("browserstack_tm", BS_LIMIT), ("testsigma_tm", TM_LIMIT)):
        assert views[vendor]["throttled"] == 0, views[vendor]
        assert max(count for _, count in views[vendor]["per_window"]) <= limit, views[vendor]
    # And the write-back spanned several invocations of the same Map iteration (its time slices),
    # each resuming where the last stopped
    scheduled = [
        event
        for event in history(runtime, execution["executionArn"])
        if event["type"] == "TaskStateEntered" and event["stateEnteredEventDetails"]["name"] == "WriteTarget"
    ]
    assert len(scheduled) > 2
