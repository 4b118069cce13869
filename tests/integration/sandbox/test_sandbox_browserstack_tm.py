"""The BrowserStack Test Management stand-in, as vendor-api/browserstack-tm-test-runs.txt describes it."""

from __future__ import annotations

import time

import pytest

from testrelay_local.sandbox import (
    DEMO_BROWSERSTACK_ACCESS_KEY,
    DEMO_BROWSERSTACK_USERNAME,
    DEMO_BS_PROJECT_ID,
    Sandbox,
    SandboxSeed,
)
from tests.integration.sandbox.conftest import Api

RUNS = f"/api/v2/projects/{DEMO_BS_PROJECT_ID}/test-runs"


@pytest.fixture
def bs(sandbox: Sandbox) -> Api:
    return Api(sandbox.browserstack_tm_url, auth=(DEMO_BROWSERSTACK_USERNAME, DEMO_BROWSERSTACK_ACCESS_KEY))


def _create(bs: Api, **fields: object) -> str:
    answer = bs.post(RUNS, json={"test_run": {"name": "CI run", "test_cases": ["TC-101", "TC-102"], **fields}})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["testrun"]["identifier"])


def test_runs_are_created_listed_with_filters_read_and_paged(bs: Api) -> None:
    # Given two runs, one closed
    first = _create(bs, tags=["ci"], assignee="qa@example.com")
    second = _create(bs, run_state="in_progress")
    assert bs.post(f"{RUNS}/{second}/close").json()["testrun"]["run_state"] == "closed"
    # Then the list hides closed runs unless asked, and filters by state and assignee
    assert [r["identifier"] for r in bs.get(RUNS).json()["test_runs"]] == [first]
    listed = bs.get(RUNS, params={"include_closed": "true", "run_state": "new_run,closed"}).json()
    assert [r["identifier"] for r in listed["test_runs"]] == [first, second]
    assert bs.get(RUNS, params={"assignee": "nobody@example.com"}).json()["test_runs"] == []
    # And a run reads back with its cases, paged with p/page_size and info
    run = bs.get(f"{RUNS}/{first}").json()["test_run"]
    assert (run["test_cases_count"], run["tags"]) == (2, ["ci"])
    page = bs.get(f"{RUNS}/{first}/test-cases", params={"p": 2, "page_size": 1}).json()
    assert page["info"] == {"page": 2, "page_size": 1, "count": 2, "prev": 1, "next": None}
    cases = bs.get(f"/api/v2/projects/{DEMO_BS_PROJECT_ID}/test-cases", params={"page_size": 300}).json()
    assert cases["info"]["count"] == 8


def test_update_test_cases_is_accepted_then_applied_asynchronously(bs: Api) -> None:
    run = _create(bs)
    body = {"test_run": {"add_test_cases": [{"test_case_ids": ["TC-103", "TC-104"]}]}}
    answer = bs.call("PATCH", f"{RUNS}/{run}/update-test-cases", json=body)
    assert answer.status_code == 202
    assert answer.json()["async"] is True
    assert bs.get(f"{RUNS}/{run}").json()["test_run"]["test_cases_count"] == 2
    time.sleep(0.3)
    assert bs.get(f"{RUNS}/{run}").json()["test_run"]["test_cases_count"] == 4


@pytest.mark.parametrize(
    ("test_run", "error"),
    [
        ({}, "operation_required"),
        ({"add_test_cases": [{"test_case_ids": ["TC-101", "TC-101"]}]}, "duplicate_test_case_id"),
        ({"add_test_cases": [{"test_case_ids": ["TC-999"]}]}, "invalid_test_case_id"),
        ({"add_test_cases": [{"ids": []}]}, "invalid_entry_shape"),
        ({"add_test_cases": [{"test_case_ids": ["TC-103"]}], "preserve_existing_results": 1}, "invalid_preserve_flag"),
        ({"add_test_cases": [{"test_case_ids": ["TC-103"], "configuration_ids": [7]}]}, "invalid_configuration_ids"),
    ],
)
def test_update_test_cases_refuses_with_the_documented_codes(bs: Api, test_run: dict[str, object], error: str) -> None:
    run = _create(bs)
    answer = bs.call("PATCH", f"{RUNS}/{run}/update-test-cases", json={"test_run": test_run})
    assert (answer.status_code, answer.json()["error"]) == (400, error)


def test_results_are_added_one_by_one_or_in_bulk_and_listed(sandbox: Sandbox, bs: Api) -> None:
    sandbox.configure(bs_bulk_results="present")
    run = _create(bs)
    one = {"test_case_id": "TC-101", "test_result": {"status": "passed", "description": "ok"}}
    assert bs.post(f"{RUNS}/{run}/results", json=one).json()["test-result"]["status"] == "passed"
    bulk = [{"test_case_id": "TC-102", "test_result": {"status": "failed"}}, {**one, "test_case_id": "TC-999"}]
    refused = bs.post(f"{RUNS}/{run}/results/bulk", json={"test_results": bulk})
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_test_case_id")
    assert bs.post(f"{RUNS}/{run}/results/bulk", json={"test_results": bulk[:1]}).status_code == 200
    listed = bs.get(f"{RUNS}/{run}/results").json()["test-results"]
    assert [(r["test_case_id"], r["status"]) for r in listed] == [("TC-101", "passed"), ("TC-102", "failed")]
    progress = bs.get(f"{RUNS}/{run}").json()["test_run"]["overall_progress"]
    assert (progress["passed"], progress["failed"]) == (1, 1)


def test_patch_post_update_assign_clone_and_delete(bs: Api) -> None:
    run = _create(bs, tags=["ci"])
    patched = bs.call("PATCH", f"{RUNS}/{run}/update", json={"test_run": {"run_state": "done", "tags": []}}).json()
    assert (patched["testrun"]["run_state"], patched["testrun"]["tags"]) == ("done", [])
    incomplete = bs.post(f"{RUNS}/{run}/update", json={"test_run": {"name": "x"}})
    assert incomplete.status_code == 400
    assert "missing" in incomplete.json()["message"]
    assigned = bs.post(f"{RUNS}/{run}/assign", json={"assign_to": [{"test_case_id": "TC-101", "assignee": "a@b.c"}]})
    assert assigned.json() == {"success": True}
    bs.post(f"{RUNS}/{run}/results", json={"test_case_id": "TC-102", "test_result": {"status": "failed"}})
    clone = bs.post(f"{RUNS}/{run}/clone", json={"test_case_selection": "by_results", "statuses": ["failed"]}).json()
    assert clone["test_run"]["test_case_summary"]["untested"] == 1
    assert clone["test_run"]["name"] == "CI run - Copy"
    deleted = bs.post(f"{RUNS}/{clone['test_run']['identifier']}/delete").json()
    assert deleted["message"].endswith("has been deleted successfully")


def test_credentials_and_the_rate_limit_are_enforced(sandbox: Sandbox, bs: Api) -> None:
    assert bs.get(RUNS, auth=("someone", "wrong")).status_code == 401
    sandbox.set_throttle(browserstack_tm={"limit": 3, "window_seconds": 60, "lockout_seconds": 60})
    answers = [bs.get(RUNS).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    # (throttle variants: tests/integration/sandbox/test_sandbox_throttle.py)


def test_by_default_only_the_documented_single_result_call_exists(bs: Api) -> None:
    run = _create(bs)
    bulk = {"test_results": [{"test_case_id": "TC-101", "test_result": {"status": "passed"}}]}
    assert bs.post(f"{RUNS}/{run}/results/bulk", json=bulk).status_code == 404
    assert bs.get(f"{RUNS}/{run}/results").json()["test-results"] == []


def test_the_bulk_call_with_another_body_refuses_this_one(sandbox: Sandbox, bs: Api) -> None:
    sandbox.configure(bs_bulk_results="other_body")
    run = _create(bs)
    item = {"test_case_id": "TC-101", "test_result": {"status": "passed"}}
    refused = bs.post(f"{RUNS}/{run}/results/bulk", json={"test_results": [item]})
    assert (refused.status_code, refused.json()["error"]) == (400, "validation_failed")
    assert bs.post(f"{RUNS}/{run}/results/bulk", json={"results": [item]}).status_code == 200


@pytest.mark.parametrize("cap", [100, 500, 1000])
def test_update_test_cases_refuses_more_cases_than_the_cap(sandbox: Sandbox, bs: Api, cap: int) -> None:
    seed = SandboxSeed.demo()
    extra = [{"identifier": f"TC-{5000 + n}", "title": f"case {n}"} for n in range(cap + 1)]
    project = seed.bs_projects[DEMO_BS_PROJECT_ID]
    project = project.model_copy(update={"cases": project.cases + [type(project.cases[0])(**c) for c in extra]})
    sandbox.load_seed(seed.model_copy(update={"bs_projects": {DEMO_BS_PROJECT_ID: project}}))
    sandbox.configure(bs_max_cases_per_request=cap)
    run = _create(bs)
    ids = [case["identifier"] for case in extra]
    over = bs.call(
        "PATCH", f"{RUNS}/{run}/update-test-cases", json={"test_run": {"add_test_cases": [{"test_case_ids": ids}]}}
    )
    assert (over.status_code, over.json()["error"]) == (400, "max_test_cases_per_request_exceeded")
    body = {"test_run": {"add_test_cases": [{"test_case_ids": ids[:cap]}]}}
    assert bs.call("PATCH", f"{RUNS}/{run}/update-test-cases", json=body).status_code == 202


@pytest.mark.parametrize(
    ("shape", "expected"),
    [("list", [{"field_name": "testsigma_id", "value": "9101"}]), ("dict", {"testsigma_id": "9101"})],
)
def test_custom_fields_come_as_the_configured_shape(sandbox: Sandbox, bs: Api, shape: str, expected: object) -> None:
    sandbox.configure(bs_custom_fields=shape)
    [first, *_] = bs.get(f"/api/v2/projects/{DEMO_BS_PROJECT_ID}/test-cases").json()["test_cases"]
    assert first["custom_fields"] == expected


def test_projects_are_listed_for_the_region_probe(bs: Api) -> None:
    # Given the demo account, when BrowserStack's own client probes a host by listing projects
    answer = bs.get("/api/v2/projects/")
    # Then the host answers 2xx with the account's projects, paged like every list
    assert answer.status_code == 200
    listed = answer.json()
    assert DEMO_BS_PROJECT_ID in [p["identifier"] for p in listed["projects"]]
    assert listed["info"]["next"] is None
    # And without the account's credentials it does not
    assert bs.get("/api/v2/projects/", auth=("someone", "wrong")).status_code == 401
