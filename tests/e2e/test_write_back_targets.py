"""One CI delivery written to Testsigma Test Management, BrowserStack Test Management and Testsigma
overrides at once, through the whole local runtime; then the same with throttling and time slices."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from testrelay.settings import get_settings
from testrelay_local.runtime import LocalRuntime
from testrelay_local.samples import TM_STATUS_IDS_YAML
from testrelay_local.sandbox import DEMO_BS_PROJECT_ID, DEMO_TM_CASES
from testrelay_local.signing import github_headers
from tests.support import commit_statuses, github_fixture, ledger, tm_run_cases, wait_for_execution

PAYLOAD = github_fixture("workflow_run.completed.payload.json")
# TC-106 (Testsigma case 9106) is left out of the Test Management map on purpose: it must show as unmatched.
TM_CASE_MAP = "\n".join(f"          {9100 + n}: {DEMO_TM_CASES[f'TC-10{n}']}" for n in range(1, 6))
ROUTES = f"""
version: 1
routes:
  - name: octo-checkout
    match:
      repositories: [octo-org/octo-repo]
      workflows: ["*"]
    testsigma: {{test_plan_id: 2741, environment_id: 12}}
    polling: {{first_wait_seconds: 1, max_wait_seconds: 1, deadline_seconds: 600}}
    targets:
      - kind: testsigma_tm
        name: patient-portal
        project_id: c47ade67-0543-4582-a4a5-b7de447c94f5
        match_by: [case_map]
        batch_size: 2
        status_ids:
{TM_STATUS_IDS_YAML}
        case_map:
{TM_CASE_MAP}
      - kind: browserstack_tm
        name: bs-checkout
        project_id: {DEMO_BS_PROJECT_ID}
        run_name: "Checkout {{short_sha}} (Testsigma run {{run_id}})"
        tags: [ci]
        assignee: relay-bot@example.com
        statuses: {{untested: skipped}}
        run_state: done
        close_run: true
        batch_size: 2
        cases_per_call: 2
      - kind: testsigma_override
        name: not-run-is-failure
        overrides: {{NOT_EXECUTED: FAILURE}}
"""
EXPECTED_BS = {
    "TC-101": "passed",
    "TC-102": "passed",
    "TC-103": "failed",
    "TC-104": "passed",
    "TC-105": "skipped",  # NOT_EXECUTED -> untested -> this target's custom mapping
    "TC-106": "passed",
}


@pytest.fixture(scope="module")
def local_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    routes = tmp_path_factory.mktemp("routes") / "routes.yaml"
    routes.write_text(ROUTES)
    with LocalRuntime(routes_file=Path(routes), time_scale=0.0, sandbox_run_duration=0.3) as runtime:
        yield runtime


def _deliver(runtime: LocalRuntime) -> str:
    headers = github_headers(runtime.webhook_secret, PAYLOAD, "workflow_run", str(uuid.uuid4()))
    answer = requests.post(runtime.webhook_url("github"), data=PAYLOAD, headers=headers, timeout=10)
    assert answer.status_code == 202, answer.text
    [job_id] = answer.json()["jobs"]
    return str(job_id)


def _bs_run(runtime: LocalRuntime) -> dict[str, Any]:
    assert runtime.sandbox is not None
    [run] = runtime.sandbox.state()["browserstack_tm"]["projects"][DEMO_BS_PROJECT_ID]["test_runs"].values()
    return dict(run)


def _assert_written_once(runtime: LocalRuntime, job_id: str) -> None:
    # Test Management holds the five mapped cases, each set once
    [tm_run] = tm_run_cases(runtime).values()
    tm_cases = {case["human_id"]: case for case in tm_run["test_run_cases"]}
    assert {human: case["status_name"] for human, case in tm_cases.items()} == {
        "TC-101": "Passed",
        "TC-102": "Passed",
        "TC-103": "Failed",
        "TC-104": "Passed",
        "TC-105": "Untested",
    }
    assert all(case["update_count"] == 1 for case in tm_cases.values())
    # BrowserStack holds one run with all six cases (matched by the TC- id in their names), one result each
    bs_run = _bs_run(runtime)
    results = {case["identifier"]: case["results"] for case in bs_run["test_cases"]}
    assert {case_id: [r["status"] for r in rs] for case_id, rs in results.items()} == {
        case_id: [status] for case_id, status in EXPECTED_BS.items()
    }
    assert "iteration 2" in results["TC-104"][0]["description"]
    assert (bs_run["run_state"], bs_run["active_state"], bs_run["assignee"]) == (
        "closed",
        "closed",
        "relay-bot@example.com",
    )
    assert bs_run["name"] == "Checkout 3484a3f (Testsigma run 1001)"
    assert bs_run["tags"] == ["ci"]
    # The Testsigma run's NOT_EXECUTED case was overridden once
    assert runtime.sandbox is not None
    [testsigma_run] = runtime.sandbox.state()["testsigma"]["runs"].values()
    overridden = {c["testCaseId"]: c["overrides"] for c in testsigma_run["cases"] if c["overrides"]}
    assert list(overridden) == [9105]
    assert [(o["from"], o["result"]) for o in overridden[9105]] == [("NOT_EXECUTED", "FAILURE")]
    # The ledger keeps each target's full outcome, the unmatched case listed by name
    record = ledger(runtime).get_job(job_id)
    assert record is not None
    targets = {t["target"]: t for t in record["targets"]}
    assert {name: (t["status"], t["written"], t["unmatched"]) for name, t in targets.items()} == {
        "patient-portal": ("written", 5, 1),
        "bs-checkout": ("written", 6, 0),
        "not-run-is-failure": ("written", 1, 0),
    }
    [unmatched] = targets["patient-portal"]["unmatched_cases"]
    assert unmatched.startswith("9106 [TC-106] Order confirmation e-mail: SUCCESS")


def test_one_delivery_writes_every_target_and_the_summary_names_each(runtime: LocalRuntime) -> None:
    # Given a route writing to Testsigma TM, BrowserStack TM and Testsigma overrides
    # When GitHub delivers a finished workflow run
    job_id = _deliver(runtime)
    # Then the job succeeds and every target holds its results exactly once
    assert wait_for_execution(runtime, job_id)["status"] == "SUCCEEDED"
    _assert_written_once(runtime, job_id)
    # And the commit status gives each target's outcome, unmatched cases included, within 140 characters
    [status] = commit_statuses(runtime)
    assert status["state"] == "failure"
    assert status["description"] == (
        "4 passed, 1 failed, 1 not run; patient-portal: ok, 1 unmatched; bs-checkout: ok; not-run-is-failure: ok"
    )
    assert len(status["description"]) <= 140


def test_throttling_errors_and_time_slices_still_write_every_result_exactly_once(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given each write-back invocation allowed a single batch (so every target resumes from its checkpoint),
    monkeypatch.setitem(os.environ, "WRITE_BACK_SLICE_SECONDS", "0.001")
    get_settings.cache_clear()
    # and the vendors throttling (BrowserStack 429, Test Management's 500 "rate limit exceeded") or failing
    # (503) on a share of their calls
    assert runtime.sandbox is not None
    runtime.sandbox.set_faults(
        rules=[
            {"vendor": "browserstack_tm", "kind": "throttle", "rate": 0.25, "seed": 3},
            {"vendor": "browserstack_tm", "kind": "server_error", "rate": 0.15, "seed": 4},
            {"vendor": "testsigma_tm", "kind": "throttle", "rate": 0.3, "seed": 5},
            {"vendor": "testsigma", "method": "PUT", "kind": "throttle", "rate": 0.3, "seed": 6},
        ]
    )
    # When a delivery arrives
    job_id = _deliver(runtime)
    # Then the job still succeeds, and every result is written exactly once
    assert wait_for_execution(runtime, job_id, timeout=120)["status"] == "SUCCEEDED"
    _assert_written_once(runtime, job_id)
    faults = runtime.sandbox.state()["faults"]["injected"]
    assert faults.get("throttle", 0) > 0
    assert faults.get("server_error", 0) > 0
    get_settings.cache_clear()
