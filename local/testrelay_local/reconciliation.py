"""The job the write-back reconciliation is proved on (tests/e2e/test_write_back_reconciliation.py and
bench/reliability.py R2/R3): one route with three targets, one of each kind that reconciles, its
sandbox seed, and where its calls are counted.

Every case's Testsigma result is SUCCESS, FAILURE or NOT_EXECUTED in turn; BrowserStack gets one
result per case, Test Management one status per case, Testsigma one override per NOT_EXECUTED case.
"""

from __future__ import annotations

import uuid
from typing import Any

import requests

from testrelay_local.functions import ROOT
from testrelay_local.runtime import LocalRuntime, reset_process_caches
from testrelay_local.samples import TM_STATUS_IDS_YAML, numbered_projects
from testrelay_local.sandbox import SandboxSeed
from testrelay_local.sandbox.seed import PlanCaseSeed, PlanSeed
from testrelay_local.signing import github_headers

PAYLOAD = (ROOT / "events" / "github" / "workflow_run.completed.payload.json").read_bytes()
PLAN_ID, TM_PROJECT, BS_PROJECT = 1, "tm-reconcile", "PR-9"
RESULTS = ("SUCCESS", "FAILURE", "NOT_EXECUTED")
BS_STATUS = {"SUCCESS": "passed", "FAILURE": "failed", "NOT_EXECUTED": "skipped"}
TM_STATUS = {"SUCCESS": "Passed", "FAILURE": "Failed", "NOT_EXECUTED": "Untested"}
ROUTES = f"""
version: 1
routes:
  - name: reconcile
    match: {{repositories: [octo-org/octo-repo], workflows: ["*"]}}
    testsigma: {{test_plan_id: {PLAN_ID}}}
    polling: {{first_wait_seconds: 0, max_wait_seconds: 1, deadline_seconds: 600}}
    targets:
      - kind: testsigma_tm
        name: tm
        project_id: {TM_PROJECT}
        match_by: [id_token]
        batch_size: 20
        status_ids:
{TM_STATUS_IDS_YAML}
      - kind: browserstack_tm
        name: bs
        project_id: {BS_PROJECT}
        match_by: [id_token]
        statuses: {{untested: skipped}}
        batch_size: 20
        cases_per_call: 5000
        bulk_results: true
      - kind: testsigma_override
        name: overrides
        overrides: {{NOT_EXECUTED: FAILURE}}
        batch_size: 5
"""
ENVIRONMENT = {"BROWSERSTACK_TM_RATE_LIMIT": "100000", "BROWSERSTACK_TM_THROTTLE_WAIT_SECONDS": "1"}
"""Pacing is not what is proved here: the sandbox's own throttle is off and a throttle fault asks for 1 s."""

BS_RESULTS = "POST /api/v2/projects/{project_id}/test-runs/{run_id}/results"
BS_BULK = BS_RESULTS + "/bulk"
BS_LIST_RESULTS = "GET /api/v2/projects/{project_id}/test-runs/{run_id}/results"
TM_UPDATE = "PUT /projects/{project_id}/test_runs/{test_run_id}/test_cases"
TM_LIST_CASES = "GET /projects/{project_id}/test_runs/{test_run_id}/test_cases"
OVERRIDE = "PUT /execution_results/{run_id}/override"
"""The sandbox's request counters of the writes and read-backs (`state()["requests"][vendor]`)."""


def seed(cases: int) -> SandboxSeed:
    names = [f"[TC-{n}] case {n}" for n in range(1, cases + 1)]
    return SandboxSeed.demo().model_copy(
        update={
            "test_plans": {
                PLAN_ID: PlanSeed(
                    name="Reconcile",
                    cases=[
                        PlanCaseSeed(
                            testCaseId=10_000 + n,
                            testCaseName=names[n - 1],
                            testSuiteId=1,
                            testSuiteName="suite",
                            result=RESULTS[n % 3],
                        )
                        for n in range(1, cases + 1)
                    ],
                )
            },
            **numbered_projects(TM_PROJECT, BS_PROJECT, "Reconcile", cases),
            "bs_async_delay_s": 0.0,
        }
    )


def prepare(runtime: LocalRuntime, cases: int, bulk: bool, rules: list[dict[str, Any]]) -> None:
    """A fresh sandbox holding `cases` cases everywhere, the vendors' throttles off, faults `rules`."""
    assert runtime.sandbox is not None
    reset_process_caches()
    runtime.sandbox.load_seed(seed(cases))
    runtime.sandbox.reset()
    runtime.sandbox.set_throttle(testsigma_tm={"enabled": False}, browserstack_tm={"enabled": False})
    runtime.sandbox.configure(bs_bulk_results="present" if bulk else "absent")
    runtime.sandbox.set_faults(rules=rules)


def deliver(runtime: LocalRuntime) -> str:
    """GitHub's published workflow_run delivery, signed: the one job it starts."""
    headers = github_headers(runtime.webhook_secret, PAYLOAD, "workflow_run", str(uuid.uuid4()))
    answer = requests.post(runtime.webhook_url("github"), data=PAYLOAD, headers=headers, timeout=30)
    jobs = answer.json().get("jobs", []) if answer.status_code == 202 else []
    if len(jobs) != 1:
        raise RuntimeError(f"the delivery was answered {answer.status_code} {answer.text[:200]}")
    return str(jobs[0])


def not_executed(cases: int) -> int:
    """How many of `cases` cases are NOT_EXECUTED (the ones the override target writes)."""
    return sum(1 for n in range(1, cases + 1) if RESULTS[n % 3] == "NOT_EXECUTED")


def calls(runtime: LocalRuntime, vendor: str, endpoint: str) -> int:
    assert runtime.sandbox is not None
    return int(runtime.sandbox.state()["requests"][vendor].get(endpoint, {}).get("calls", 0))


def fault_rules(kinds: tuple[str, ...], share: float, seed: int) -> list[dict[str, Any]]:
    """`share` of every vendor call of the write-back faulted, `kinds` in equal parts, drawn from
    generators seeded from `seed` (Testsigma: its override call only, the trigger and polling are
    left alone)."""
    rules: list[dict[str, Any]] = []
    each = share / len(kinds)
    for offset, (vendor, method) in enumerate((("browserstack_tm", "*"), ("testsigma_tm", "*"), ("testsigma", "PUT"))):
        for index, kind in enumerate(kinds):
            # Rules are tried in turn, each on the calls the ones before let through: `each` of all calls.
            rate = each / (1 - each * index)
            rules.append(
                {
                    "vendor": vendor,
                    "method": method,
                    "kind": kind,
                    "rate": rate,
                    "seed": seed * 100 + offset * 10 + index,
                }
            )
    return rules
