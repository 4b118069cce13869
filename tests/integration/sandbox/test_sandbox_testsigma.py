"""Testsigma app stand-in: trigger, status progression, case results, overrides, JUnit report."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from testrelay_local.sandbox import (
    DEMO_ENVIRONMENT_ID,
    DEMO_PLAN_CASES,
    DEMO_PLAN_ID,
    DEMO_PLAN_NAME,
    DEMO_TESTSIGMA_API_KEY,
    Sandbox,
    SandboxSeed,
)
from tests.integration.sandbox.conftest import Api

TESTSIGMA_ERROR_KEYS = {"timeStamp", "error", "code", "fieldErrors", "objectErrors"}


def trigger(testsigma: Api, **body: Any) -> dict[str, Any]:
    response = testsigma.post("/execution_results", json={"executionId": DEMO_PLAN_ID, **body})
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def case_results(testsigma: Api, run_id: int) -> dict[str, Any]:
    response = testsigma.get(f"/execution_results/{run_id}/test_case_results")
    assert response.status_code == 200, response.text
    results: dict[str, Any] = response.json()
    return results


def test_trigger_answers_a_new_queued_run_of_the_plan(testsigma: Api, sandbox: Sandbox) -> None:
    # Given the demo plan
    # When a CI triggers it the way Testsigma's own cURL sample does (ids as strings)
    response = testsigma.post(
        "/execution_results",
        json={
            "executionId": str(DEMO_PLAN_ID),
            "environmentId": str(DEMO_ENVIRONMENT_ID),
            "buildNo": "1.9.26_rc1",
            "runtimeData": {"branch": "main"},
        },
    )

    # Then the answer is the documented "just created" run
    assert response.status_code == 200
    run = response.json()
    assert isinstance(run["id"], int)
    assert run["executionId"] == DEMO_PLAN_ID
    assert (run["result"], run["status"]) == ("QUEUED", "STATUS_CREATED")
    assert run["buildNo"] == "1.9.26_rc1"
    assert run["environmentId"] == DEMO_ENVIRONMENT_ID
    assert run["execution"] is None
    assert run["totalCount"] == run["passedCount"] == run["failedCount"] == 0
    assert run["triggeredType"] == "API"
    # And the sandbox holds the run with what it was triggered with
    held = sandbox.state()["testsigma"]["runs"][str(run["id"])]
    assert held["runtimeData"] == {"branch": "main"}


def test_each_trigger_starts_a_distinct_run(testsigma: Api) -> None:
    # Given one run of the demo plan
    first = trigger(testsigma)

    # When the plan is triggered again
    second = trigger(testsigma)

    # Then that is another run with its own case result ids
    assert second["id"] != first["id"]
    first_ids = {case["testCaseResultId"] for case in case_results(testsigma, first["id"])["testCases"]}
    second_ids = {case["testCaseResultId"] for case in case_results(testsigma, second["id"])["testCases"]}
    assert first_ids.isdisjoint(second_ids)


def test_completed_run_reports_the_plan_outcome_and_counts(testsigma: Api) -> None:
    # Given a run of the demo plan (4 passing, 1 failing, 1 not executed case) with run_duration 0
    run = trigger(testsigma, buildNo="42")

    # When its status is polled
    status = testsigma.get(f"/execution_results/{run['id']}").json()

    # Then it is complete, failed, and counted case by case
    assert (status["status"], status["result"]) == ("STATUS_COMPLETED", "FAILURE")
    assert status["totalCount"] == 6
    assert (status["passedCount"], status["failedCount"], status["notExecutedCount"]) == (4, 1, 1)
    assert status["abortedCount"] == status["stoppedCount"] == 0
    assert status["endTime"] >= status["startTime"]
    # And the plan is nested as Testsigma nests it
    assert status["execution"]["id"] == DEMO_PLAN_ID
    assert status["execution"]["name"] == DEMO_PLAN_NAME
    assert status["execution"]["lastRunId"] == run["id"]


def test_a_plan_whose_cases_all_pass_succeeds(sandbox: Sandbox, testsigma: Api) -> None:
    # Given a plan with one passing case, spelled the newer way (PASSED)
    case = {"testCaseId": 1, "testCaseName": "[TC-1] ok", "testSuiteId": 2, "testSuiteName": "S", "result": "PASSED"}
    sandbox.load_seed({"test_plans": {"7": {"name": "Green", "cases": [case]}}})

    # When it runs to completion
    run_id = testsigma.post("/execution_results", json={"executionId": 7}).json()["id"]
    status = testsigma.get(f"/execution_results/{run_id}").json()

    # Then the run succeeds and the case keeps its spelling
    assert (status["result"], status["passedCount"]) == ("SUCCESS", 1)
    assert case_results(testsigma, run_id)["testCases"][0]["result"] == "PASSED"


def test_case_results_list_every_case_of_the_run(testsigma: Api) -> None:
    # Given a completed run of the demo plan
    run = trigger(testsigma)

    # When its test case results are read
    results = case_results(testsigma, run["id"])

    # Then every case is there with its final result and the documented fields
    assert (results["executionId"], results["executionResultId"]) == (DEMO_PLAN_ID, run["id"])
    assert (results["status"], results["result"]) == ("STATUS_COMPLETED", "FAILURE")
    cases = {case["testCaseId"]: case for case in results["testCases"]}
    assert set(cases) == set(DEMO_PLAN_CASES.values())
    for human_id, case_id in DEMO_PLAN_CASES.items():
        assert f"[{human_id}]" in cases[case_id]["testCaseName"]
    assert sorted(case["result"] for case in cases.values()) == ["FAILURE", "NOT_EXECUTED"] + ["SUCCESS"] * 4
    assert len({case["testCaseResultId"] for case in cases.values()}) == 6
    assert {case["machineResultId"] for case in cases.values()} == {cases[9101]["machineResultId"]}
    # And cases of one suite share the suite's result id
    by_suite = {(case["testSuiteId"], case["testSuiteResultId"]) for case in cases.values()}
    assert len(by_suite) == len({case["testSuiteId"] for case in cases.values()})
    # And the data-driven case reports its iterations
    data_driven = [case for case in cases.values() if case["isDataDrivenCase"]]
    assert len(data_driven) == 1
    assert [it["result"] for it in data_driven[0]["iterationResults"]] == ["SUCCESS", "SUCCESS"]


def test_a_run_moves_through_the_documented_statuses() -> None:
    # Given a sandbox whose runs take half a second
    with Sandbox(run_duration=0.5) as sandbox:
        testsigma = Api(sandbox.testsigma_url, {"Authorization": f"Bearer {DEMO_TESTSIGMA_API_KEY}"})
        run_id = trigger(testsigma)["id"]

        # When the run is polled until it completes
        seen: list[str] = []
        unfinished_results: set[str] = set()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            status = testsigma.get(f"/execution_results/{run_id}").json()
            if not seen or seen[-1] != status["status"]:
                seen.append(status["status"])
            if status["status"] == "STATUS_COMPLETED":
                break
            unfinished_results.add(status["result"])
            cases = case_results(testsigma, run_id)
            if cases["status"] != "STATUS_COMPLETED":
                unfinished_results.add(cases["result"])
                unfinished_results.update(case["result"] for case in cases["testCases"])
            time.sleep(0.01)

    # Then the statuses came in the documented order, ending completed
    order = ["STATUS_CREATED", "STATUS_QUEUED", "STATUS_PRE_FLIGHT", "STATUS_IN_PROGRESS", "STATUS_COMPLETED"]
    assert seen == sorted(seen, key=order.index)
    assert seen[-1] == "STATUS_COMPLETED"
    assert "STATUS_IN_PROGRESS" in seen
    # And nothing reported a result before completion
    assert unfinished_results == {"QUEUED"}


def test_unknown_plan_is_a_404_in_testsigma_error_shape(testsigma: Api, sandbox: Sandbox) -> None:
    # Given no plan 999 in the seed
    # When it is triggered
    response = testsigma.post("/execution_results", json={"executionId": 999})

    # Then Testsigma's error shape says so, and no run exists
    assert response.status_code == 404
    assert set(response.json()) == TESTSIGMA_ERROR_KEYS
    assert "999" in response.json()["error"]
    assert sandbox.state()["testsigma"]["runs"] == {}


def test_unknown_environment_is_a_404(testsigma: Api) -> None:
    # Given the demo seed, which knows one environment
    # When a run is asked on another
    response = testsigma.post("/execution_results", json={"executionId": DEMO_PLAN_ID, "environmentId": 4242})

    # Then it is refused
    assert response.status_code == 404
    assert "4242" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        (b"{not json", "not valid JSON"),
        (b"[2741]", "JSON object"),
        (b"{}", "executionId"),
        (b'{"executionId": "checkout"}', "executionId must be a number"),
        (b'{"executionId": 2741, "runtimeData": "x"}', "runtimeData"),
    ],
)
def test_malformed_trigger_is_a_400_naming_the_problem(testsigma: Api, body: bytes, complaint: str) -> None:
    # Given a body that is not a valid trigger
    # When it is posted
    response = testsigma.post("/execution_results", data=body, headers={"Content-Type": "application/json"})

    # Then Testsigma's error shape names what is wrong
    assert response.status_code == 400
    assert set(response.json()) == TESTSIGMA_ERROR_KEYS
    assert complaint in response.json()["error"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/execution_results/424242"),
        ("GET", "/execution_results/424242/test_case_results"),
        ("PUT", "/execution_results/424242/override"),
        ("GET", "/reports/junit/424242"),
        ("GET", "/execution_results/not-a-number"),
    ],
)
def test_unknown_run_is_a_404(testsigma: Api, method: str, path: str) -> None:
    # Given no run 424242
    # When any run endpoint is called for it
    response = testsigma.call(method, path, json=[])

    # Then it is not found
    assert response.status_code == 404
    assert set(response.json()) == TESTSIGMA_ERROR_KEYS


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-key", f"token {DEMO_TESTSIGMA_API_KEY}"])
def test_wrong_or_missing_key_is_a_401(testsigma: Api, sandbox: Sandbox, authorization: str | None) -> None:
    # Given a client without the accepted Bearer key
    client = Api(testsigma.base_url, {"Authorization": authorization} if authorization else {})

    # When it triggers the demo plan
    response = client.post("/execution_results", json={"executionId": DEMO_PLAN_ID})

    # Then it is refused and nothing runs
    assert response.status_code == 401
    assert set(response.json()) == TESTSIGMA_ERROR_KEYS
    assert sandbox.state()["testsigma"]["runs"] == {}


def _result_ids(testsigma: Api, run_id: int) -> dict[int, int]:
    return {case["testCaseId"]: case["testCaseResultId"] for case in case_results(testsigma, run_id)["testCases"]}


def test_override_of_every_failing_case_turns_the_run_green(testsigma: Api, sandbox: Sandbox) -> None:
    # Given a completed run with one failing and one not-executed case
    run_id = trigger(testsigma)["id"]
    ids = _result_ids(testsigma, run_id)
    failing, skipped = ids[DEMO_PLAN_CASES["TC-103"]], ids[DEMO_PLAN_CASES["TC-105"]]

    # When both are overridden as passed
    response = testsigma.put(
        f"/execution_results/{run_id}/override",
        json=[
            {"testCaseResultId": failing, "comment": "flaky card sandbox", "result": "SUCCESS"},
            {"testCaseResultId": skipped, "comment": "ran by hand", "result": "SUCCESS"},
        ],
    )

    # Then the documented full-success answer comes back
    assert response.status_code == 200
    assert response.json() == {"errors": [], "message": "Overridden the results successfully"}
    # And the stored results, the run result and its counts follow
    results = case_results(testsigma, run_id)
    assert {case["result"] for case in results["testCases"]} == {"SUCCESS"}
    status = testsigma.get(f"/execution_results/{run_id}").json()
    assert (status["result"], status["passedCount"], status["failedCount"]) == ("SUCCESS", 6, 0)
    held = {case["testCaseResultId"]: case for case in sandbox.state()["testsigma"]["runs"][str(run_id)]["cases"]}
    assert held[failing]["overrides"] == [{"from": "FAILURE", "result": "SUCCESS", "comment": "flaky card sandbox"}]


def test_override_with_some_unknown_ids_applies_the_rest(testsigma: Api) -> None:
    # Given a completed run
    run_id = trigger(testsigma)["id"]
    failing = _result_ids(testsigma, run_id)[DEMO_PLAN_CASES["TC-103"]]

    # When one known and one foreign case result are overridden
    response = testsigma.put(
        f"/execution_results/{run_id}/override",
        json=[
            {"testCaseResultId": failing, "comment": "fixed", "result": "SUCCESS"},
            {"testCaseResultId": 2286, "comment": "not ours", "result": "SUCCESS"},
        ],
    )

    # Then the documented partial answer lists the foreign id, and the known one changed
    assert response.status_code == 200
    assert response.json() == {
        "errors": [f"Given test case result id 2286 is not related to execution run {run_id}"],
        "message": "Overridden the result partially",
    }
    changed = next(c for c in case_results(testsigma, run_id)["testCases"] if c["testCaseResultId"] == failing)
    assert changed["result"] == "SUCCESS"


def test_override_with_only_invalid_entries_is_a_400_and_changes_nothing(testsigma: Api) -> None:
    # Given a completed run
    run_id = trigger(testsigma)["id"]
    before = case_results(testsigma, run_id)
    some_id = before["testCases"][0]["testCaseResultId"]

    # When every override is invalid (foreign id, unknown result)
    response = testsigma.put(
        f"/execution_results/{run_id}/override",
        json=[
            {"testCaseResultId": 2288, "comment": "x", "result": "SUCCESS"},
            {"testCaseResultId": some_id, "comment": "x", "result": "GREEN"},
        ],
    )

    # Then the documented 400 shape names each problem, and no result changed
    assert response.status_code == 400
    body = response.json()
    assert set(body) == TESTSIGMA_ERROR_KEYS
    assert body["error"].startswith("Failed to override the result")
    assert f"Given test case result id 2288 is not related to execution run {run_id}" in body["error"]
    assert "GREEN" in body["error"]
    assert case_results(testsigma, run_id) == before


def test_junit_report_describes_the_run(testsigma: Api) -> None:
    # Given a completed run of the demo plan
    run_id = trigger(testsigma)["id"]

    # When its JUnit report is asked for
    response = testsigma.get(f"/reports/junit/{run_id}", headers={"Accept": "application/xml"})

    # Then it is JUnit XML with one testcase per case, the failure and the skip marked
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/xml")
    root = ET.fromstring(response.text)  # noqa: S314 (XML the test's own sandbox produced)
    assert root.tag == "testsuites"
    assert (root.get("name"), root.get("tests"), root.get("failures"), root.get("skipped")) == (
        DEMO_PLAN_NAME,
        "6",
        "1",
        "1",
    )
    failed = [case.get("name") for case in root.iter("testcase") if case.find("failure") is not None]
    assert failed == [next(n for n in _names(testsigma, run_id) if "[TC-103]" in n)]


def _names(testsigma: Api, run_id: int) -> list[str]:
    return [case["testCaseName"] for case in case_results(testsigma, run_id)["testCases"]]


def test_seed_rejects_a_plan_listing_a_case_twice() -> None:
    # Given a plan that lists testCaseId 1 twice
    case = {"testCaseId": 1, "testCaseName": "a", "testSuiteId": 1, "testSuiteName": "s", "result": "SUCCESS"}

    # When it is loaded as a seed / Then it is refused
    with pytest.raises(ValueError, match="more than once"):
        SandboxSeed.model_validate({"test_plans": {"1": {"name": "p", "cases": [case, case]}}})


def test_saved_run_configs_are_the_documented_bare_list(testsigma: Api) -> None:
    # Given the demo account (its plans carry no saved configurations)
    answer = testsigma.get("/saved_execution_configs")
    # Then the documented answer is a JSON list, and a wrong key is refused
    assert (answer.status_code, answer.json()) == (200, [])
    assert testsigma.get("/saved_execution_configs", headers={"Authorization": "Bearer wrong"}).status_code == 401
