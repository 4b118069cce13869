"""Testsigma Test Management stand-in: test runs from a static selection, run-case updates, lists."""

from __future__ import annotations

from typing import Any

import pytest

from testrelay_local.sandbox import (
    DEMO_TM_CASES,
    DEMO_TM_PROJECT_ID,
    DEMO_TM_STATUSES,
    DEMO_TM_USER_ID,
    Sandbox,
    SandboxSeed,
)
from tests.integration.sandbox.conftest import Api

PROJECT = f"/projects/{DEMO_TM_PROJECT_ID}"
CHECKOUT_CASES = [DEMO_TM_CASES[f"TC-10{n}"] for n in range(1, 7)]


def create_body(case_ids: list[str], **overrides: Any) -> dict[str, Any]:
    """The request of the documentation's sample, for the given cases."""
    return {
        "title": "Regression suite — patient portal",
        "description": "Executing regression test cases",
        "status": "ACTIVE",
        "project_id": DEMO_TM_PROJECT_ID,
        "human_id": "DEMO-001",
        "selection_type": "STATIC",
        "static_selection_filters": [{"field": "id", "operator": "IN", "values": case_ids}],
        "start_date": 1710675200,
        "end_date": 1710761600,
        "assignee_id": DEMO_TM_USER_ID,
        "label_names": ["Smoke", "Regression"],
        "environment_ids": [],
        **overrides,
    }


def create_run(tm: Api, case_ids: list[str] = CHECKOUT_CASES) -> dict[str, Any]:
    response = tm.post(f"{PROJECT}/test_runs", json=create_body(case_ids))
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()["data"]["test_run"]
    return run


def held_run(sandbox: Sandbox, run_id: str) -> dict[str, Any]:
    run: dict[str, Any] = sandbox.state()["testsigma_tm"]["projects"][DEMO_TM_PROJECT_ID]["test_runs"][run_id]
    return run


def test_create_run_answers_the_documented_test_run(tm: Api, sandbox: Sandbox) -> None:
    # Given the demo project
    # When a run of the six checkout cases is created with the documentation's request
    response = tm.post(f"{PROJECT}/test_runs", json=create_body(CHECKOUT_CASES))

    # Then the documented answer echoes the run
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == ""
    run = body["data"]["test_run"]
    assert set(run) == {
        "id", "human_id", "created_at", "updated_at", "title", "description", "status", "project_id",
        "selection_type", "start_date", "end_date", "assignee_id", "label_names", "environment_ids",
    }  # fmt: skip
    assert run["project_id"] == DEMO_TM_PROJECT_ID
    assert (run["title"], run["status"], run["selection_type"]) == (
        "Regression suite — patient portal",
        "ACTIVE",
        "STATIC",
    )
    assert run["label_names"] == ["Smoke", "Regression"]
    assert isinstance(run["created_at"], int)
    # And every selected case is in the run, untested
    cases = held_run(sandbox, run["id"])["test_run_cases"]
    assert [case["test_case_id"] for case in cases] == CHECKOUT_CASES
    assert {case["test_run_status_id"] for case in cases} == {DEMO_TM_STATUSES["Untested"]}
    assert {case["update_count"] for case in cases} == {0}


def test_run_cases_start_with_no_status_when_the_account_has_no_untested_status(tm: Api, sandbox: Sandbox) -> None:
    # Given an account without an "Untested" status
    seed = SandboxSeed.demo().model_dump()
    seed["tm_run_statuses"] = [status for status in seed["tm_run_statuses"] if status["name"] != "Untested"]
    sandbox.load_seed(seed)

    # When a run is created
    run = create_run(tm, CHECKOUT_CASES[:1])

    # Then its case has no status yet
    cases = tm.get(f"{PROJECT}/test_runs/{run['id']}/test_cases").json()["data"]["test_run_cases"]
    assert cases[0]["test_run_status_id"] is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": None}, "title"),
        ({"selection_type": "DYNAMIC"}, "selection_type"),
        ({"static_selection_filters": []}, "static_selection_filters"),
        (
            {"static_selection_filters": [{"field": "title", "operator": "IN", "values": CHECKOUT_CASES}]},
            "static_selection_filters[0].field",
        ),
        (
            {"static_selection_filters": [{"field": "id", "operator": "IN", "values": ["no-such-case"]}]},
            "static_selection_filters[0].values",
        ),
        ({"project_id": "another-project"}, "project_id"),
        ({"assignee_id": "nobody"}, "assignee_id"),
    ],
)
def test_invalid_create_is_a_422_naming_the_field(
    tm: Api, sandbox: Sandbox, overrides: dict[str, Any], field: str
) -> None:
    # Given a create request with one invalid part
    # When it is posted
    response = tm.post(f"{PROJECT}/test_runs", json=create_body(CHECKOUT_CASES, **overrides))

    # Then the 422 names that field, and no run was created
    assert response.status_code == 422
    body = response.json()
    assert set(body) == {"message", "errors"}
    assert field in body["errors"]
    assert held_project_runs(sandbox) == {}


def held_project_runs(sandbox: Sandbox) -> dict[str, Any]:
    runs: dict[str, Any] = sandbox.state()["testsigma_tm"]["projects"][DEMO_TM_PROJECT_ID]["test_runs"]
    return runs


def test_malformed_json_is_a_422(tm: Api) -> None:
    # Given a body that is not JSON
    # When it is posted as a run
    response = tm.post(f"{PROJECT}/test_runs", data=b"{oops", headers={"Content-Type": "application/json"})

    # Then TM's 422 shape says so
    assert response.status_code == 422
    assert "not valid JSON" in response.json()["errors"]["body"][0]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/projects/00000000-0000-0000-0000-000000000000/test_runs"),
        ("GET", "/projects/00000000-0000-0000-0000-000000000000/test_runs"),
        ("GET", "/projects/00000000-0000-0000-0000-000000000000/test_cases"),
        ("GET", f"{PROJECT}/test_runs/00000000-0000-0000-0000-000000000000"),
        ("GET", f"{PROJECT}/test_runs/00000000-0000-0000-0000-000000000000/test_cases"),
        ("PUT", f"{PROJECT}/test_runs/00000000-0000-0000-0000-000000000000/test_cases"),
    ],
)
def test_unknown_project_or_run_is_a_404(tm: Api, method: str, path: str) -> None:
    # Given ids the account does not have
    # When they are used
    response = tm.call(method, path, json=create_body(CHECKOUT_CASES))

    # Then TM answers not found
    assert response.status_code == 404
    assert "not found" in response.json()["message"]


def test_update_sets_each_case_status_once(tm: Api, sandbox: Sandbox) -> None:
    # Given a run of the six checkout cases
    run = create_run(tm)
    passed, failed = DEMO_TM_STATUSES["Passed"], DEMO_TM_STATUSES["Failed"]

    # When two of its cases are given a result
    response = tm.put(
        f"{PROJECT}/test_runs/{run['id']}/test_cases",
        json={
            "test_run_cases": [
                {
                    "test_case_id": DEMO_TM_CASES["TC-101"],
                    "test_run_status_id": passed,
                    "user_id": DEMO_TM_USER_ID,
                    "description": "Test case completed successfully",
                },
                {"test_case_id": DEMO_TM_CASES["TC-103"], "test_run_status_id": failed, "description": "card refused"},
            ]
        },
    )

    # Then the documented answer lists what was applied
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Test run cases updated successfully."
    answered = body["data"]["test_run_cases"]
    assert [(c["test_case_id"], c["test_run_status_id"], c["user_id"]) for c in answered] == [
        (DEMO_TM_CASES["TC-101"], passed, DEMO_TM_USER_ID),
        (DEMO_TM_CASES["TC-103"], failed, None),
    ]
    assert all(isinstance(c["updated_at"], int) for c in answered)
    # And reading the run's cases shows the statuses and descriptions
    listed = tm.get(f"{PROJECT}/test_runs/{run['id']}/test_cases").json()["data"]["test_run_cases"]
    by_case = {case["test_case_id"]: case for case in listed}
    assert by_case[DEMO_TM_CASES["TC-103"]]["description"] == "card refused"
    assert by_case[DEMO_TM_CASES["TC-102"]]["test_run_status_id"] == DEMO_TM_STATUSES["Untested"]
    # And the sandbox counts one write for each updated case and none for the others
    counts = {case["human_id"]: case["update_count"] for case in held_run(sandbox, run["id"])["test_run_cases"]}
    assert counts == {"TC-101": 1, "TC-102": 0, "TC-103": 1, "TC-104": 0, "TC-105": 0, "TC-106": 0}


@pytest.mark.parametrize(
    ("bad_update", "field"),
    [
        (
            {"test_case_id": DEMO_TM_CASES["TC-107"], "test_run_status_id": DEMO_TM_STATUSES["Passed"]},
            "test_run_cases[1].test_case_id",
        ),
        (
            {"test_case_id": DEMO_TM_CASES["TC-102"], "test_run_status_id": "no-such-status"},
            "test_run_cases[1].test_run_status_id",
        ),
        (
            {"test_case_id": DEMO_TM_CASES["TC-102"], "test_run_status_id": DEMO_TM_STATUSES["Passed"], "user_id": "x"},
            "test_run_cases[1].user_id",
        ),
    ],
)
def test_update_with_one_invalid_case_applies_nothing(
    tm: Api, sandbox: Sandbox, bad_update: dict[str, Any], field: str
) -> None:
    # Given a run of the checkout cases (TC-107 is not in it)
    run = create_run(tm)

    # When a valid update is sent together with an invalid one
    valid = {"test_case_id": DEMO_TM_CASES["TC-101"], "test_run_status_id": DEMO_TM_STATUSES["Passed"]}
    response = tm.put(f"{PROJECT}/test_runs/{run['id']}/test_cases", json={"test_run_cases": [valid, bad_update]})

    # Then the 422 names the invalid field, and not even the valid case was written
    assert response.status_code == 422
    assert field in response.json()["errors"]
    cases = held_run(sandbox, run["id"])["test_run_cases"]
    assert {case["update_count"] for case in cases} == {0}
    assert {case["status_name"] for case in cases} == {"Untested"}


def test_update_without_cases_is_a_422(tm: Api) -> None:
    # Given a run
    run = create_run(tm)

    # When an empty update is sent
    response = tm.put(f"{PROJECT}/test_runs/{run['id']}/test_cases", json={"test_run_cases": []})

    # Then it is refused
    assert response.status_code == 422
    assert "test_run_cases" in response.json()["errors"]


def test_lists_are_paginated_with_a_cursor(tm: Api) -> None:
    # Given three runs
    created = [create_run(tm)["id"] for _ in range(3)]

    # When they are listed two at a time
    first = tm.get(f"{PROJECT}/test_runs", params={"page_size": 2}).json()
    second = tm.get(f"{PROJECT}/test_runs", params={"page_size": 2, "cursor": first["page_info"]["next"]}).json()

    # Then the pages cover every run once and link to each other
    assert first["page_info"]["total_count"] == 3
    assert (first["page_info"]["page_size"], first["page_info"]["prev"]) == (2, None)
    assert second["page_info"]["next"] is None
    assert second["page_info"]["prev"] is not None
    listed = [run["id"] for page in (first, second) for run in page["data"]["test_runs"]]
    assert listed == created
    # And a single run reads back as created
    single = tm.get(f"{PROJECT}/test_runs/{created[0]}").json()["data"]["test_run"]
    assert single["id"] == created[0]


@pytest.mark.parametrize("params", [{"page_size": "0"}, {"page_size": "many"}, {"cursor": "not-a-cursor"}])
def test_bad_paging_parameters_are_a_422(tm: Api, params: dict[str, str]) -> None:
    # Given paging parameters this API never produces
    # When a list is asked with them
    response = tm.get(f"{PROJECT}/test_cases", params=params)

    # Then the parameter is named
    assert response.status_code == 422
    assert set(response.json()["errors"]) <= {"page_size", "cursor"}


def test_project_cases_statuses_and_users_are_listed(tm: Api) -> None:
    # Given the demo account
    # When its test cases, run statuses and users are listed
    cases = tm.get(f"{PROJECT}/test_cases").json()
    statuses = tm.get("/test_runs/statuses").json()
    users = tm.get("/users").json()

    # Then they carry the seed's ids (20 per page by default covers all of them)
    assert {case["human_id"]: case["id"] for case in cases["data"]["test_cases"]} == DEMO_TM_CASES
    assert cases["page_info"] == {"page_size": 20, "total_count": 8, "next": None, "prev": None}
    assert {s["name"]: s["id"] for s in statuses["data"]["test_run_statuses"]} == DEMO_TM_STATUSES
    assert [user["id"] for user in users["data"]["users"]] == [DEMO_TM_USER_ID]
    assert set(users["data"]["users"][0]) == {"id", "email", "status"}


@pytest.mark.parametrize(
    ("authorization", "path"),
    [(None, "/users"), ("Bearer sandbox-tm-key", "/no/such/endpoint"), ("Bearer sandbox-tm-key", "/users")],
)
def test_every_answer_announces_the_rate_limit(tm: Api, authorization: str | None, path: str) -> None:
    # Given any call, refused, unknown or fine
    client = Api(tm.base_url, {"Authorization": authorization} if authorization else {})

    # When it is answered
    response = client.get(path)

    # Then the rate-limit headers are there
    assert int(response.headers["x-tms-api-limit"]) == 10
    assert 0 <= int(response.headers["x-tms-api-remaining"]) < 10
    assert int(response.headers["x-tms-api-reset"]) > 0


@pytest.mark.parametrize("authorization", [None, "Bearer sandbox-testsigma-key", "token sandbox-tm-key"])
def test_wrong_or_missing_key_is_a_401(tm: Api, sandbox: Sandbox, authorization: str | None) -> None:
    # Given a client without the TM key as a Bearer token
    client = Api(tm.base_url, {"Authorization": authorization} if authorization else {})

    # When it creates a run
    response = client.post(f"{PROJECT}/test_runs", json=create_body(CHECKOUT_CASES))

    # Then it is refused and nothing is created
    assert response.status_code == 401
    assert "message" in response.json()
    assert held_project_runs(sandbox) == {}
