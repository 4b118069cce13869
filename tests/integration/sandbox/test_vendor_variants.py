"""The vendor clients against every variant of what the vendors' documents leave open.

Each undocumented point is a sandbox knob (`VendorBehaviour`); the documented behaviour is the
default. The clients must cope with every variant: detect it once, remember it, or stop with a clear
error where nothing can work (never loop).
"""

from __future__ import annotations

import base64
from typing import get_args

import pytest

from testrelay.errors import VendorPagingStalled
from testrelay.sync.matching import custom_field_values, label_names
from testrelay.vendors.browserstack_tm import BrowserStackTmClient, BulkResultsUnsupported, TooManyCases
from testrelay.vendors.http import VendorSession
from testrelay.vendors.testsigma import OVERRIDE_RESULTS, override_result
from testrelay.vendors.testsigma_tm import NEXT_IS_URL, is_tm_throttle
from testrelay.vendors.testsigma_tm import TestsigmaTmClient as TmClient
from testrelay_local.sandbox import (
    DEMO_BROWSERSTACK_ACCESS_KEY,
    DEMO_BROWSERSTACK_USERNAME,
    DEMO_BS_PROJECT_ID,
    DEMO_TM_API_KEY,
    DEMO_TM_PROJECT_ID,
    Sandbox,
    SandboxSeed,
)
from testrelay_local.sandbox.seed import BsCaseSeed, TmCaseSeed, TmPaging

MANY = 250  # more than two pages of the client's 100


def _tm(sandbox: Sandbox) -> TmClient:
    session = VendorSession(
        "testsigma-tm",
        sandbox.testsigma_tm_url,
        {"Authorization": f"Bearer {DEMO_TM_API_KEY}"},
        is_throttle=is_tm_throttle,
    )
    return TmClient(session)


def _bs(sandbox: Sandbox) -> BrowserStackTmClient:
    token = base64.b64encode(f"{DEMO_BROWSERSTACK_USERNAME}:{DEMO_BROWSERSTACK_ACCESS_KEY}".encode()).decode()
    return BrowserStackTmClient(
        VendorSession("browserstack-tm", sandbox.browserstack_tm_url, {"Authorization": f"Basic {token}"})
    )


def _many_tm_cases(sandbox: Sandbox) -> None:
    seed = SandboxSeed.demo()
    project = seed.tm_projects[DEMO_TM_PROJECT_ID]
    extra = [
        TmCaseSeed(id=f"case-{n:04}", human_id=f"TC-{7000 + n}", title=f"case {n}", labels=[f"ts:{n}"])
        for n in range(MANY)
    ]
    sandbox.load_seed(
        seed.model_copy(
            update={"tm_projects": {DEMO_TM_PROJECT_ID: project.model_copy(update={"cases": project.cases + extra})}}
        )
    )


def _calls(sandbox: Sandbox, endpoint: str) -> int:
    """Calls that reached an endpoint whose template contains `endpoint` (every vendor)."""
    counts = sandbox.state()["requests"]
    return sum(c["calls"] for endpoints in counts.values() for key, c in endpoints.items() if endpoint in key)


WORKING_PAGING = [variant for variant in get_args(TmPaging) if variant != "unknown_param"]


@pytest.mark.parametrize("paging", WORKING_PAGING)
def test_tm_lists_are_read_whole_whatever_the_cursor_parameter(sandbox: Sandbox, paging: str) -> None:
    # Given a project of more than two pages, and the API paging one of the plausible ways
    _many_tm_cases(sandbox)
    sandbox.configure(tm_paging=paging)
    client = _tm(sandbox)
    # When its cases are listed twice
    first = client.list_cases(DEMO_TM_PROJECT_ID)
    detected = client.cursor_parameter
    sandbox.reset()
    _many_tm_cases(sandbox)
    sandbox.configure(tm_paging=paging)
    again = client.list_cases(DEMO_TM_PROJECT_ID)
    # Then every case comes once, in order
    assert len(first) == MANY + 8
    assert len({case["id"] for case in first}) == MANY + 8
    assert again == first
    # And the parameter was detected the first time and reused: the second listing costs one call a page
    expected = {"next_url": None, "page_number": "page"}.get(paging, paging)
    assert detected == expected
    assert _calls(sandbox, "test_cases") == 3


def test_tm_paging_that_does_not_advance_stops_with_a_clear_error(sandbox: Sandbox) -> None:
    # Given an API whose cursor parameter is none the client knows (each call answers page 1 again)
    _many_tm_cases(sandbox)
    sandbox.configure(tm_paging="unknown_param")
    # When the cases are listed
    with pytest.raises(VendorPagingStalled) as stalled:
        _tm(sandbox).list_cases(DEMO_TM_PROJECT_ID)
    # Then the error names the vendor and the parameters tried, after a bounded number of calls
    message = str(stalled.value)
    assert message.startswith("testsigma-tm: GET /projects/")
    assert "cursor, page_token, after, page" in message
    assert _calls(sandbox, "test_cases") == 5


@pytest.mark.parametrize("paging", get_args(TmPaging))
def test_tm_probe_paging_answers_the_detected_parameter(sandbox: Sandbox, paging: str) -> None:
    sandbox.configure(tm_paging=paging)
    client = _tm(sandbox)
    if paging == "unknown_param":
        with pytest.raises(VendorPagingStalled):
            client.probe_paging(DEMO_TM_PROJECT_ID)
        return
    assert client.probe_paging(DEMO_TM_PROJECT_ID) == {"next_url": NEXT_IS_URL, "page_number": "page"}.get(
        paging, paging
    )


@pytest.mark.parametrize("labels", ["objects", "strings"])
def test_tm_labels_read_as_names_in_either_shape(sandbox: Sandbox, labels: str) -> None:
    sandbox.configure(tm_labels=labels)
    [case, *_] = _tm(sandbox).list_cases(DEMO_TM_PROJECT_ID)
    assert isinstance(case["labels"][0], dict if labels == "objects" else str)
    assert label_names(case["labels"]) == ("checkout",)


@pytest.mark.parametrize("shape", ["list", "dict"])
def test_bs_custom_fields_read_in_either_shape(sandbox: Sandbox, shape: str) -> None:
    sandbox.configure(bs_custom_fields=shape)
    [case, *_] = _bs(sandbox).list_cases(DEMO_BS_PROJECT_ID)
    assert custom_field_values(case["custom_fields"]) == {"testsigma_id": ("9101",)}


def _bs_run(sandbox: Sandbox, client: BrowserStackTmClient) -> str:
    return str(client.create_run(DEMO_BS_PROJECT_ID, {"name": "r", "test_cases": ["TC-101", "TC-102"]})["identifier"])


@pytest.mark.parametrize("bulk", ["absent", "other_body"])
def test_bs_bulk_results_missing_or_with_another_body_asks_for_single_results(sandbox: Sandbox, bulk: str) -> None:
    sandbox.configure(bs_bulk_results=bulk)
    client = _bs(sandbox)
    run = _bs_run(sandbox, client)
    with pytest.raises(BulkResultsUnsupported) as unsupported:
        client.add_results(DEMO_BS_PROJECT_ID, run, [{"test_case_id": "TC-101", "test_result": {"status": "passed"}}])
    assert unsupported.value.status == (404 if bulk == "absent" else 400)
    assert client.probe_bulk_results(DEMO_BS_PROJECT_ID, run) is False


def test_bs_bulk_results_present_are_written(sandbox: Sandbox) -> None:
    sandbox.configure(bs_bulk_results="present")
    client = _bs(sandbox)
    run = _bs_run(sandbox, client)
    assert client.probe_bulk_results(DEMO_BS_PROJECT_ID, run) is True
    items = [{"test_case_id": c, "test_result": {"status": "passed"}} for c in ("TC-101", "TC-102")]
    assert client.add_results(DEMO_BS_PROJECT_ID, run, items) == 2


def test_bs_too_many_cases_is_its_own_error(sandbox: Sandbox) -> None:
    sandbox.configure(bs_max_cases_per_request=1)
    client = _bs(sandbox)
    run = _bs_run(sandbox, client)
    with pytest.raises(TooManyCases) as too_many:
        client.add_cases(DEMO_BS_PROJECT_ID, run, ["TC-103", "TC-104"], [])
    assert too_many.value.code == "max_test_cases_per_request_exceeded"
    assert client.add_cases(DEMO_BS_PROJECT_ID, run, ["TC-103"], [])


def test_bs_paging_that_does_not_advance_stops(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    client = _bs(sandbox)
    monkeypatch.setattr(
        client.http, "request", lambda *a, **k: {"test_cases": [{"identifier": "TC-1"}], "info": {"next": 1}}
    )
    with pytest.raises(VendorPagingStalled, match=r"browserstack-tm: GET .*p=1 answered info\.next='1'"):
        list(client.list_cases(DEMO_BS_PROJECT_ID))


def test_bs_case_list_read_pages_ahead_is_the_whole_list_in_order_each_page_once(sandbox: Sandbox) -> None:
    # Given a project of four pages of 300 and a bit
    seed = SandboxSeed.demo()
    project = seed.bs_projects[DEMO_BS_PROJECT_ID]
    extra = [BsCaseSeed(identifier=f"TC-{5000 + n}", title=f"case {n}") for n in range(1000)]
    sandbox.load_seed(
        seed.model_copy(
            update={"bs_projects": {DEMO_BS_PROJECT_ID: project.model_copy(update={"cases": project.cases + extra})}}
        )
    )
    client = _bs(sandbox)
    one_by_one = [case["identifier"] for case in client.list_cases(DEMO_BS_PROJECT_ID)]
    pages = _calls(sandbox, "/test-cases")
    # When it is read with four pages on their way at once
    ahead = [case["identifier"] for case in client.list_cases(DEMO_BS_PROJECT_ID, width=4)]
    # Then it is the same list, in the same order, each page asked for once
    assert ahead == one_by_one
    assert len(ahead) == len(project.cases) + 1000
    assert _calls(sandbox, "/test-cases") - pages == pages == 4


def test_bs_case_list_read_ahead_goes_on_past_a_count_the_list_outgrew(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first page counted one page, the list grew meanwhile: info.next still leads to the rest.
    pages = {1: (["TC-1"], 2, 1), 2: (["TC-2"], 3, 400), 3: (["TC-3"], None, 601)}

    def request(method: str, path: str, params: dict[str, int], **_: object) -> dict[str, object]:
        ids, following, count = pages[params["p"]]
        return {"test_cases": [{"identifier": i} for i in ids], "info": {"next": following, "count": count}}

    client = _bs(sandbox)
    monkeypatch.setattr(client.http, "request", request)
    assert [case["identifier"] for case in client.list_cases(DEMO_BS_PROJECT_ID, width=4)] == ["TC-1", "TC-2", "TC-3"]


def test_bs_case_list_read_ahead_stops_at_the_last_page_whatever_the_count_claims(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a list of two pages whose count claims a million cases
    asked: list[int] = []

    def request(method: str, path: str, params: dict[str, int], **_: object) -> dict[str, object]:
        asked.append(params["p"])
        following = 2 if params["p"] == 1 else None
        ids = [f"TC-{params['p']}"] if params["p"] <= 2 else []
        return {"test_cases": [{"identifier": i} for i in ids], "info": {"next": following, "count": 1_000_000}}

    client = _bs(sandbox)
    monkeypatch.setattr(client.http, "request", request)
    # When it is read four pages ahead
    cases = [case["identifier"] for case in client.list_cases(DEMO_BS_PROJECT_ID, width=4)]
    # Then it is the two pages' cases, and no more than the pages in flight were asked past the last
    assert cases == ["TC-1", "TC-2"]
    assert len(asked) <= 1 + 4


@pytest.mark.parametrize("spelling", ["enum", "both"])
def test_overrides_outside_the_enum_are_refused_unless_the_variant_allows_them(sandbox: Sandbox, spelling: str) -> None:
    from tests.integration.sandbox.conftest import Api

    sandbox.configure(ts_override_spellings=spelling)
    testsigma = Api(sandbox.testsigma_url, {"Authorization": "Bearer sandbox-testsigma-key"})
    run_id = testsigma.post("/execution_results", json={"executionId": 2741}).json()["id"]
    cases = testsigma.get(f"/execution_results/{run_id}/test_case_results").json()["testCases"]
    result_id = cases[0]["testCaseResultId"]
    answer = testsigma.put(
        f"/execution_results/{run_id}/override", json=[{"testCaseResultId": result_id, "result": "FAILED"}]
    )
    assert answer.status_code == (400 if spelling == "enum" else 200)
    for value in OVERRIDE_RESULTS:
        ok = testsigma.put(
            f"/execution_results/{run_id}/override", json=[{"testCaseResultId": result_id, "result": value}]
        )
        assert ok.status_code == 200, (value, ok.text)


def test_override_results_are_spelled_as_the_enum() -> None:
    assert [override_result(v) for v in ("passed", "FAILED", "aborted", "NOT_EXECUTED")] == [
        "SUCCESS",
        "FAILURE",
        "ABORTED",
        "NOT_EXECUTED",
    ]
    with pytest.raises(ValueError, match="allowed: SUCCESS, FAILURE, ABORTED, NOT_EXECUTED, QUEUED, STOPPED"):
        override_result("FLAKY")


def test_the_control_api_sets_knobs_partially_and_reset_restores_the_seed(sandbox: Sandbox) -> None:
    from tests.integration.sandbox.conftest import Api

    control = Api(f"{sandbox.base_url}/_sandbox")
    answer = control.post("/config", json={"tm_paging": "after", "bs_bulk_results": "present"})
    assert answer.status_code == 200
    assert (answer.json()["tm_paging"], answer.json()["tm_labels"]) == ("after", "objects")
    assert control.get("/config").json()["bs_bulk_results"] == "present"
    refused = control.post("/config", json={"tm_paging": "sideways"})
    assert refused.status_code == 400
    sandbox.reset()
    assert control.get("/config").json()["tm_paging"] == "cursor"
    _ = BsCaseSeed  # the seed's custom fields stay a dict; the knob only changes how they are served
