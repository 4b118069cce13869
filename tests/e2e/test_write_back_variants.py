"""Write-back through the whole local runtime against every variant of what the vendors' documents
leave open (the sandbox's `VendorBehaviour` knobs), asserting what a user would notice: every result
lands exactly once, in the right case, with the right status; where nothing can work (a cursor that
never advances) the target ends with a clear error instead of hanging.

Matching is by `field`, so Testsigma TM's labels and BrowserStack's custom fields are read in each
shape; the TM project has more cases than one page, so its cursor is turned.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from testrelay.settings import get_settings
from testrelay.vendors.browserstack_tm import BrowserStackTmClient, BulkResultsUnsupported
from testrelay_local.runtime import LocalRuntime, reset_process_caches
from testrelay_local.sandbox import DEMO_BS_PROJECT_ID, DEMO_TM_PROJECT_ID, DEMO_TM_STATUSES, SandboxSeed
from testrelay_local.sandbox.seed import TmCaseSeed
from testrelay_local.signing import github_headers
from tests.support import github_fixture, ledger, tm_run_cases, wait_for_execution

PAYLOAD = github_fixture("workflow_run.completed.payload.json")
TM_STATUS_IDS = (
    "\n".join(
        f"          {status}: {DEMO_TM_STATUSES[name]}"
        for status, name in (("passed", "Passed"), ("failed", "Failed"), ("blocked", "Blocked"), ("skipped", "Skipped"))
    )
    + f"\n          untested: {DEMO_TM_STATUSES['Untested']}"
)
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
        name: tm
        project_id: {DEMO_TM_PROJECT_ID}
        match_by: [field]
        match_field: testsigma
        batch_size: 2
        status_ids:
{TM_STATUS_IDS}
      - kind: browserstack_tm
        name: bs
        project_id: {DEMO_BS_PROJECT_ID}
        match_by: [field]
        match_field: testsigma_id
        statuses: {{untested: skipped}}
        batch_size: 2
        cases_per_call: 3
      - kind: testsigma_override
        name: overrides
        overrides: {{NOT_EXECUTED: FAILED}}
"""
EXPECTED_TM = {"TC-101": "Passed", "TC-102": "Passed", "TC-103": "Failed", "TC-104": "Passed", "TC-105": "Untested"}
EXPECTED_TM["TC-106"] = "Passed"
EXPECTED_BS = {"TC-101": "passed", "TC-102": "passed", "TC-103": "failed", "TC-104": "passed", "TC-105": "skipped"}
EXPECTED_BS["TC-106"] = "passed"
FILLER_CASES = 150  # the TM case list spans two pages of 100

BULK = "POST /api/v2/projects/{project_id}/test-runs/{run_id}/results/bulk"
SINGLE = "POST /api/v2/projects/{project_id}/test-runs/{run_id}/results"
LIST_RESULTS = "GET /api/v2/projects/{project_id}/test-runs/{run_id}/results"
UPDATE_CASES = "PATCH /api/v2/projects/{project_id}/test-runs/{run_id}/update-test-cases"
TM_CASES = "GET /projects/{project_id}/test_cases"


def _seed() -> SandboxSeed:
    """The demo data with each TM case labelled `testsigma:<Testsigma case id>`, and filler cases."""
    seed = SandboxSeed.demo()
    project = seed.tm_projects[DEMO_TM_PROJECT_ID]
    ids = {f"TC-{case_id - 9000}": case_id for case_id in range(9101, 9107)}
    cases = [
        case.model_copy(update={"labels": [*case.labels, f"testsigma:{ids[case.human_id]}"]})
        if case.human_id in ids
        else case
        for case in project.cases
    ]
    cases += [
        TmCaseSeed(
            id=f"filler-{n:04}", human_id=f"TC-{8000 + n}", title=f"filler {n}", labels=[f"testsigma:{70000 + n}"]
        )
        for n in range(FILLER_CASES)
    ]
    return seed.model_copy(update={"tm_projects": {DEMO_TM_PROJECT_ID: project.model_copy(update={"cases": cases})}})


@pytest.fixture(scope="module")
def local_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    routes = tmp_path_factory.mktemp("routes") / "routes.yaml"
    routes.write_text(ROUTES)
    with LocalRuntime(
        routes_file=Path(routes), time_scale=0.0, sandbox_run_duration=0.3, sandbox_seed=_seed()
    ) as runtime:
        yield runtime


@pytest.fixture
def variant_runtime(runtime: LocalRuntime) -> LocalRuntime:
    # A new account's API, as far as the relay knows: no client remembers another variant's findings.
    reset_process_caches()
    return runtime


def _deliver(runtime: LocalRuntime) -> str:
    headers = github_headers(runtime.webhook_secret, PAYLOAD, "workflow_run", str(uuid.uuid4()))
    answer = requests.post(runtime.webhook_url("github"), data=PAYLOAD, headers=headers, timeout=10)
    assert answer.status_code == 202, answer.text
    [job_id] = answer.json()["jobs"]
    return str(job_id)


def _calls(runtime: LocalRuntime, vendor: str, endpoint: str) -> int:
    assert runtime.sandbox is not None
    return int(runtime.sandbox.state()["requests"].get(vendor, {}).get(endpoint, {}).get("calls", 0))


def _targets(runtime: LocalRuntime, job_id: str) -> dict[str, dict[str, Any]]:
    record = ledger(runtime).get_job(job_id)
    assert record is not None
    return {t["target"]: t for t in record["targets"]}


def _assert_every_result_once(runtime: LocalRuntime, job_id: str) -> None:
    assert runtime.sandbox is not None
    # Testsigma TM: the six matched cases, each set once with its status
    [tm_run] = tm_run_cases(runtime).values()
    tm_cases = {case["human_id"]: case for case in tm_run["test_run_cases"]}
    assert {human: case["status_name"] for human, case in tm_cases.items()} == EXPECTED_TM
    assert all(case["update_count"] == 1 for case in tm_cases.values())
    # BrowserStack: one run holding the six cases, one result each
    [bs_run] = runtime.sandbox.state()["browserstack_tm"]["projects"][DEMO_BS_PROJECT_ID]["test_runs"].values()
    results = {case["identifier"]: [r["status"] for r in case["results"]] for case in bs_run["test_cases"]}
    assert results == {case: [status] for case, status in EXPECTED_BS.items()}
    # Testsigma: the NOT_EXECUTED case overridden once, in the enum's spelling
    [testsigma_run] = runtime.sandbox.state()["testsigma"]["runs"].values()
    overridden = {c["testCaseId"]: c["overrides"] for c in testsigma_run["cases"] if c["overrides"]}
    assert {case: [o["result"] for o in overrides] for case, overrides in overridden.items()} == {9105: ["FAILURE"]}
    # And the ledger says so
    outcomes = {name: (t["status"], t["written"], t["unmatched"]) for name, t in _targets(runtime, job_id).items()}
    assert outcomes == {"tm": ("written", 6, 0), "bs": ("written", 6, 0), "overrides": ("written", 1, 0)}


VARIANTS: list[dict[str, Any]] = [
    {},  # the documented behaviour
    {"bs_bulk_results": "other_body"},
    {"bs_bulk_results": "present"},
    {"bs_custom_fields": "dict"},
    {"bs_max_cases_per_request": 1},
    {"bs_max_cases_per_request": 2},
    {"tm_labels": "strings"},
    {"tm_paging": "page_token"},
    {"tm_paging": "after"},
    {"tm_paging": "page_number"},
    {"tm_paging": "next_url"},
    {"ts_override_spellings": "both"},
    {
        "bs_bulk_results": "present",
        "bs_custom_fields": "dict",
        "bs_max_cases_per_request": 2,
        "tm_labels": "strings",
        "tm_paging": "next_url",
        "ts_override_spellings": "both",
    },
]


@pytest.mark.parametrize(
    "knobs", VARIANTS, ids=lambda knobs: ",".join(f"{k}={v}" for k, v in knobs.items()) or "documented"
)
def test_every_result_lands_once_whatever_the_undocumented_behaviour(
    variant_runtime: LocalRuntime, knobs: dict[str, Any]
) -> None:
    # Given the vendors showing this variant of what their documents leave open
    runtime = variant_runtime
    assert runtime.sandbox is not None
    runtime.sandbox.configure(**knobs)
    # When a delivery is written back to all three targets
    job_id = _deliver(runtime)
    # Then the job succeeds, every result written exactly once
    assert wait_for_execution(runtime, job_id, timeout=120)["status"] == "SUCCEEDED"
    _assert_every_result_once(runtime, job_id)
    # And the multi-result call was tried at most once: kept where it works, never again where it does not
    bulk_calls = _calls(runtime, "browserstack_tm", BULK)
    if knobs.get("bs_bulk_results") == "present":
        assert (bulk_calls, _calls(runtime, "browserstack_tm", SINGLE)) == (3, 0)
    else:
        assert (bulk_calls, _calls(runtime, "browserstack_tm", SINGLE)) == (1, 6)
    # and where it was refused for its body (not absent), what the run holds was read back once before
    # any single result, so a refused call that wrote part of its batch is never written twice
    read_back = 1 if knobs.get("bs_bulk_results") == "other_body" else 0
    assert _calls(runtime, "browserstack_tm", LIST_RESULTS) == read_back


def test_detections_are_made_once_across_time_slices(
    variant_runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given each write-back invocation allowed a single unit of work (so every target resumes many times)
    runtime = variant_runtime
    assert runtime.sandbox is not None
    monkeypatch.setitem(os.environ, "WRITE_BACK_SLICE_SECONDS", "0.001")
    get_settings.cache_clear()
    # and vendors where the bulk call wants another body, one case per update-test-cases call is the cap
    # and the TM cursor parameter is the second candidate
    runtime.sandbox.configure(bs_bulk_results="other_body", bs_max_cases_per_request=1, tm_paging="page_token")
    # When a delivery is written back
    job_id = _deliver(runtime)
    # Then every result still lands once
    assert wait_for_execution(runtime, job_id, timeout=180)["status"] == "SUCCEEDED"
    _assert_every_result_once(runtime, job_id)
    # And each capability was probed once: one bulk attempt; one refused update-test-cases (the 3 cases
    # left after the create call's 3: refused, halved to 1, remembered: three calls of one case); one
    # listing of the TM cases (2 pages + 1 turn with the wrong parameter)
    assert _calls(runtime, "browserstack_tm", BULK) == 1
    update = runtime.sandbox.state()["requests"]["browserstack_tm"][UPDATE_CASES]["responses"]
    assert update == {"202": 3, "400": 1}
    assert _calls(runtime, "testsigma_tm", TM_CASES) == 3
    get_settings.cache_clear()


def test_a_cursor_that_never_advances_ends_the_target_with_a_clear_error(variant_runtime: LocalRuntime) -> None:
    # Given a Testsigma TM API reading a cursor parameter no client knows (every list answers page 1)
    runtime = variant_runtime
    assert runtime.sandbox is not None
    runtime.sandbox.configure(tm_paging="unknown_param")
    # When a delivery is written back
    job_id = _deliver(runtime)
    # Then the execution ends (no hang), the TM target failed with an error naming vendor and parameter
    execution = wait_for_execution(runtime, job_id, timeout=120)
    targets = _targets(runtime, job_id)
    assert targets["tm"]["status"] == "failed"
    assert targets["tm"]["error"] == "VendorPagingStalled"
    assert "testsigma-tm: GET /projects/" in targets["tm"]["cause"]
    assert "cursor, page_token, after, page" in targets["tm"]["cause"]
    # And the other targets were written all the same
    assert (targets["bs"]["status"], targets["overrides"]["status"]) == ("written", "written")
    assert execution["status"] in {"SUCCEEDED", "FAILED"}
    assert tm_run_cases(runtime) == {}


def test_a_refused_multi_result_call_that_wrote_part_of_its_batch_writes_nothing_twice(
    variant_runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a multi-result call that records its batch and then answers a 4xx (the worst reading of an
    # undocumented call: it is refused, yet part of it landed)
    runtime = variant_runtime
    assert runtime.sandbox is not None
    runtime.sandbox.configure(bs_bulk_results="present")
    original = BrowserStackTmClient.add_results

    def wrote_then_refused(self: BrowserStackTmClient, project_id: str, run_id: str, results: Any) -> int:
        original(self, project_id, run_id, results[:1])
        raise BulkResultsUnsupported("browserstack-tm: HTTP 422 unprocessable", 422)

    monkeypatch.setattr(BrowserStackTmClient, "add_results", wrote_then_refused)
    # When a delivery is written back
    job_id = _deliver(runtime)
    # Then the results already there are read back and each case still gets exactly one result
    assert wait_for_execution(runtime, job_id, timeout=120)["status"] == "SUCCEEDED"
    _assert_every_result_once(runtime, job_id)
    assert _calls(runtime, "browserstack_tm", SINGLE) == 5
