"""`testrelay doctor` against the sandbox: every check, every variant of the undocumented behaviours,
the failures a user must be told about in one line, and never a write to a vendor."""

from __future__ import annotations

import argparse
import json
import socket
import textwrap
from pathlib import Path
from typing import Any, get_args

import pytest
import requests

from testrelay.routing import parse_routes
from testrelay_cli.doctor import Check, DoctorSettings, cmd_doctor, run_doctor
from testrelay_local.runtime import Vendors
from testrelay_local.sandbox import (
    DEMO_BS_PROJECT_ID,
    DEMO_PLAN_ID,
    DEMO_TESTSIGMA_API_KEY,
    DEMO_TM_CASES,
    DEMO_TM_PROJECT_ID,
    DEMO_TM_STATUSES,
    DEMO_TM_USER_ID,
    Sandbox,
    SandboxSeed,
    VendorBehaviour,
)

ROUTES = textwrap.dedent(
    f"""
    version: 1
    routes:
      - name: checkout
        testsigma: {{test_plan_id: {DEMO_PLAN_ID}, environment_id: 12}}
        targets:
          - kind: testsigma_tm
            name: tm
            project_id: {DEMO_TM_PROJECT_ID}
            status_ids:
              passed: {DEMO_TM_STATUSES["Passed"]}
              failed: {DEMO_TM_STATUSES["Failed"]}
              blocked: {DEMO_TM_STATUSES["Blocked"]}
              untested: {DEMO_TM_STATUSES["Untested"]}
            case_map: {{9101: {DEMO_TM_CASES["TC-101"]}}}
          - kind: browserstack_tm
            name: bs
            project_id: {DEMO_BS_PROJECT_ID}
            match_by: [id_token]
          - kind: testsigma_override
            name: not-run-fails
            overrides: {{NOT_EXECUTED: FAILURE}}
    """
)


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def vendors(sandbox: Sandbox) -> Vendors:
    """The sandbox's vendors, with its demo data."""
    # Doctor runs unpaced here, several times a second: the sandbox's documented self-throttling
    # (Testsigma TM 10/s) would refuse some of those calls; it has its own tests (test_sandbox_throttle).
    sandbox.set_throttle(testsigma_tm={"enabled": False}, browserstack_tm={"enabled": False})
    return Vendors.sandbox(sandbox, SandboxSeed.demo())


def _settings(vendors: Vendors, **changes: Any) -> DoctorSettings:
    urls = {**vendors.urls, **changes.pop("urls", {})}
    credentials = {**vendors.credentials, **changes.pop("credentials", {})}
    hosts = changes.pop("browserstack_hosts", [urls["BROWSERSTACK_TM_BASE_URL"]])
    # Unpaced: a doctor run makes a dozen calls, far below the limits; pacing is the relay's own limiter.
    changes.setdefault("pace", False)
    return DoctorSettings(urls=urls, credentials=credentials, browserstack_hosts=hosts, timeout=2.0, **changes)


def _sample_run(sandbox: Sandbox, plan_id: int = DEMO_PLAN_ID) -> int:
    answer = requests.post(
        f"{sandbox.testsigma_url}/execution_results",
        json={"executionId": plan_id, "environmentId": 12},
        headers={"Authorization": f"Bearer {DEMO_TESTSIGMA_API_KEY}"},
        timeout=5,
    )
    answer.raise_for_status()
    return int(answer.json()["id"])


def _writes(sandbox: Sandbox) -> dict[str, int]:
    counts = sandbox.state()["requests"]
    return {
        f"{vendor} {endpoint}": count["calls"]
        for vendor, endpoints in counts.items()
        for endpoint, count in endpoints.items()
        if not endpoint.startswith("GET ")
    }


def _rows(checks: list[Check]) -> dict[tuple[str, str], Check]:
    return {(c.check, c.target): c for c in checks}


@pytest.fixture
def checked(sandbox: Sandbox, vendors: Vendors) -> dict[tuple[str, str], Check]:
    run_id = _sample_run(sandbox)
    before = _writes(sandbox)
    checks = run_doctor(parse_routes(ROUTES), _settings(vendors, sample_runs={"checkout": run_id}))
    # Then doctor sent no write of any kind to any vendor
    assert _writes(sandbox) == before
    return _rows(checks)


def test_a_sound_routes_file_passes_every_check_with_a_sample_run(checked: dict[tuple[str, str], Check]) -> None:
    assert not [c for c in checked.values() if c.result == "FAIL"], checked
    assert checked["plan", "checkout"].result == "ok"
    assert checked["environment", "checkout"].result == "ok"
    assert checked["region", "browserstack"].result == "ok"
    assert checked["status ids", "checkout/tm"].detail.startswith("passed=Passed")
    # the demo plan has 6 cases; the TM target maps one and finds the others by the TC- id in their names
    assert checked["case matching", "checkout/tm"].detail.startswith("6 of 6 plan cases match")
    assert checked["case matching", "checkout/bs"].detail.startswith("6 of 6 plan cases match (by id_token)")
    assert checked["case matching", "checkout/not-run-fails"].detail.startswith("1 of")
    # what only a write can tell is said so, never guessed
    assert "detected at first write" in checked["capability: results", "checkout/bs"].detail
    assert checked["capability: results", "checkout/bs"].result == "unchecked"


def test_without_a_sample_run_the_plan_is_unchecked_and_says_how_to_check_it(
    sandbox: Sandbox, vendors: Vendors
) -> None:
    rows = _rows(run_doctor(parse_routes(ROUTES), _settings(vendors)))
    assert rows["plan", "checkout"].result == "unchecked"
    assert "--sample-run checkout=" in rows["plan", "checkout"].detail
    assert rows["case matching", "checkout/tm"].result == "unchecked"
    assert rows["case_map", "checkout/tm"].result == "ok"
    assert not [c for c in rows.values() if c.result == "FAIL"]


def _variants() -> list[tuple[str, Any]]:
    """Every variant of every undocumented behaviour the sandbox offers (its knobs, as they grow)."""
    out: list[tuple[str, Any]] = []
    for name, info in VendorBehaviour.model_fields.items():
        choices = get_args(info.annotation)
        if choices:
            out += [(name, choice) for choice in choices]
        elif info.annotation is bool:
            out += [(name, True), (name, False)]
        elif info.annotation is int:
            out += [(name, value) for value in (100, 500, 1000)]
    return out


@pytest.mark.parametrize(("knob", "variant"), _variants())
def test_doctor_copes_with_every_variant_and_never_writes(
    sandbox: Sandbox, vendors: Vendors, knob: str, variant: Any
) -> None:
    sandbox.configure(**{knob: variant})
    run_id = _sample_run(sandbox)
    before = _writes(sandbox)
    rows = _rows(run_doctor(parse_routes(ROUTES), _settings(vendors, sample_runs={"checkout": run_id})))
    assert _writes(sandbox) == before
    failed = {key: c.detail for key, c in rows.items() if c.result == "FAIL"}
    if (knob, variant) == ("tm_paging", "unknown_param"):
        # a server ignoring every known cursor parameter is a failure to report, not a loop
        assert list(failed) == [("capability: paging", "checkout/tm")]
        assert "paging does not advance" in failed["capability: paging", "checkout/tm"]
    else:
        assert failed == {}
    if knob == "tm_labels":
        shape = "a list of strings" if variant == "strings" else "a list of {id, name"
        assert rows["capability: labels", "checkout/tm"].detail.startswith(f"labels come as {shape}")
    if knob == "bs_custom_fields":
        shape = "a list of {field_name, value} objects" if variant == "list" else "a {name: value} dict"
        assert rows["capability: custom fields", "checkout/bs"].detail.startswith(f"fields come as {shape}")
    if knob == "tm_paging" and variant != "unknown_param":
        assert rows["capability: paging", "checkout/tm"].result == "ok"


@pytest.mark.parametrize(
    ("credentials", "row", "variable"),
    [
        ({"testsigma_api_key": "wrong"}, ("credentials", "testsigma"), "TESTSIGMA_API_KEY"),
        ({"testsigma_tm_api_key": "wrong"}, ("credentials", "testsigma-tm"), "TESTSIGMA_TM_API_KEY"),
        ({"browserstack_access_key": "wrong"}, ("credentials", "browserstack"), "BROWSERSTACK_ACCESS_KEY"),
    ],
)
def test_a_wrong_key_fails_clearly_without_printing_it(
    vendors: Vendors, credentials: dict[str, str], row: tuple[str, str], variable: str
) -> None:
    checks = run_doctor(parse_routes(ROUTES), _settings(vendors, credentials=credentials))
    rows = _rows(checks)
    assert rows[row].result == "FAIL"
    assert variable in rows[row].detail
    assert "wrong" not in json.dumps([c.as_json() for c in checks])


def test_a_missing_key_is_named() -> None:
    urls = {"TESTSIGMA_BASE_URL": "http://127.0.0.1:9", "TESTSIGMA_TM_BASE_URL": "http://127.0.0.1:9"}
    urls["BROWSERSTACK_TM_BASE_URL"] = "http://127.0.0.1:9"
    rows = _rows(run_doctor(parse_routes(ROUTES), DoctorSettings(urls=urls, credentials={})))
    assert rows["credentials", "testsigma"].detail == "no key: set TESTSIGMA_API_KEY"
    assert rows["credentials", "browserstack"].detail == "set BROWSERSTACK_USERNAME and BROWSERSTACK_ACCESS_KEY"


def test_unknown_plan_project_and_status_ids_fail_naming_what_to_fix(sandbox: Sandbox, vendors: Vendors) -> None:
    text = (
        ROUTES.replace(f"test_plan_id: {DEMO_PLAN_ID}", "test_plan_id: 999")
        .replace(DEMO_TM_PROJECT_ID, "no-such-project")
        .replace(f"project_id: {DEMO_BS_PROJECT_ID}", "project_id: PR-404")
    )
    rows = _rows(run_doctor(parse_routes(text), _settings(vendors, sample_runs={"checkout": _sample_run(sandbox)})))
    assert rows["plan", "checkout"].result == "FAIL"
    assert f"is a run of plan {DEMO_PLAN_ID}, not of plan 999" in rows["plan", "checkout"].detail
    assert rows["project", "checkout/tm"].detail.startswith("project no-such-project not found (HTTP 404)")
    assert rows["project", "checkout/bs"].detail.startswith("project PR-404 not found (HTTP 404)")

    missing_run = _rows(run_doctor(parse_routes(ROUTES), _settings(vendors, sample_runs={"checkout": 424242})))
    assert missing_run["plan", "checkout"].result == "FAIL"
    assert "sample run 424242" in missing_run["plan", "checkout"].detail

    wrong_status = ROUTES.replace(DEMO_TM_STATUSES["Blocked"], "not-a-status")
    rows = _rows(run_doctor(parse_routes(wrong_status), _settings(vendors)))
    assert rows["status ids", "checkout/tm"].result == "FAIL"
    assert "blocked -> not-a-status" in rows["status ids", "checkout/tm"].detail
    assert "Retest (" in rows["status ids", "checkout/tm"].detail  # the statuses it could use

    people = "name: tm\n        assignee_id: " + DEMO_TM_USER_ID + "\n        user_id: nobody\n"
    users = ROUTES.replace("name: tm\n", people)
    rows = _rows(run_doctor(parse_routes(users), _settings(vendors)))
    assert rows["users", "checkout/tm"].result == "FAIL"
    assert rows["users", "checkout/tm"].detail == "not users of this account: user_id nobody"

    unknown_case = ROUTES.replace(DEMO_TM_CASES["TC-101"], "no-such-case")
    rows = _rows(run_doctor(parse_routes(unknown_case), _settings(vendors)))
    assert rows["case_map", "checkout/tm"].detail == "1 mapped case id(s) not in the project: no-such-case"


def test_an_unreachable_host_fails_clearly(vendors: Vendors) -> None:
    dead = _closed_port_url()
    settings = _settings(vendors, urls={"TESTSIGMA_BASE_URL": dead, "TESTSIGMA_TM_BASE_URL": dead})
    rows = _rows(run_doctor(parse_routes(ROUTES), settings))
    for vendor, variable in (("testsigma", "TESTSIGMA_BASE_URL"), ("testsigma-tm", "TESTSIGMA_TM_BASE_URL")):
        assert rows["credentials", vendor].result == "FAIL"
        assert rows["credentials", vendor].detail.startswith(f"no usable answer from {dead}")
        assert variable in rows["credentials", vendor].detail
    assert rows["project", "checkout/tm"].result == "unchecked"


def test_the_browserstack_region_is_the_first_host_that_answers_2xx(vendors: Vendors) -> None:
    dead, sandbox_host = _closed_port_url(), vendors.urls["BROWSERSTACK_TM_BASE_URL"]
    hosts = [dead, sandbox_host]
    found = _rows(run_doctor(parse_routes(ROUTES), _settings(vendors, browserstack_hosts=hosts)))
    assert found["region", "browserstack"].result == "ok"
    assert found["region", "browserstack"].detail.startswith(f"{sandbox_host} (probed {dead}, {sandbox_host})")

    # configured for the first region while the account answers on the second
    settings = _settings(vendors, browserstack_hosts=hosts, urls={"BROWSERSTACK_TM_BASE_URL": dead})
    wrong = _rows(run_doctor(parse_routes(ROUTES), settings))
    assert wrong["region", "browserstack"].result == "FAIL"
    assert f"set BROWSERSTACK_TM_BASE_URL (template parameter BrowserstackTmBaseUrl) to {sandbox_host}" in (
        wrong["region", "browserstack"].detail
    )


def _args(routes: Path, *extra: str) -> argparse.Namespace:
    from testrelay_cli.cli import parser

    return parser().parse_args(["doctor", "--routes", str(routes), *extra])


def test_the_command_prints_a_table_or_json_and_exits_by_the_worst_result(tmp_path: Path) -> None:
    # the shipped routes file against a sandbox of its own (demo data)
    lines: list[str] = []
    assert cmd_doctor(_args(Path("config/routes.yaml"), "--vendors", "sandbox"), lines.append) == 0
    table = lines[0].splitlines()
    assert table[0].split() == ["check", "target", "result", "detail"]
    assert table[2].split()[:3] == ["credentials", "testsigma", "ok"]
    assert lines[-1].endswith("ok, 3 unchecked")

    out: list[str] = []
    assert cmd_doctor(_args(Path("config/routes.yaml"), "--vendors", "sandbox", "--json"), out.append) == 0
    report = json.loads("".join(out))
    assert report["ok"] is True
    assert report["exit_code"] == 0
    assert {"check", "target", "result", "detail"} <= set(report["checks"][0])

    broken = tmp_path / "routes.yaml"
    broken.write_text(Path("config/routes.yaml").read_text().replace("82deb495-f76c-5e89-a675-eb5152e2f1d7", "nope"))
    out = []
    assert cmd_doctor(_args(broken, "--vendors", "sandbox", "--json"), out.append) == 1
    assert json.loads("".join(out))["ok"] is False


@pytest.mark.parametrize(
    ("extra", "routes_text", "expected"),
    [
        ((), "routes: [", "not valid YAML"),
        ((), None, "cannot be read"),
        (("--sample-run", "octo-checkout"), "shipped", "--sample-run 'octo-checkout': write ROUTE=RUN_ID"),
        (("--sample-run", "nope=1"), "shipped", "--sample-run names route(s) not in the routes file: nope"),
    ],
)
def test_a_users_mistake_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: tuple[str, ...], routes_text: str | None, expected: str
) -> None:
    routes = tmp_path / "routes.yaml"
    if routes_text is not None:
        routes.write_text(routes_text if routes_text != "shipped" else Path("config/routes.yaml").read_text())
    assert cmd_doctor(_args(routes, "--vendors", "sandbox", *extra)) == 2
    err = capsys.readouterr().err
    assert expected in err
    assert "Traceback" not in err
    out: list[str] = []
    assert cmd_doctor(_args(routes, "--vendors", "sandbox", "--json", *extra), out.append) == 2
    assert expected in json.loads("".join(out))["error"]


def test_the_cli_runs_doctor(capsys: pytest.CaptureFixture[str]) -> None:
    from testrelay_cli.cli import main

    assert main(["doctor", "--vendors", "sandbox", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


def test_real_vendors_without_a_key_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("TESTSIGMA_API_KEY", raising=False)
    assert cmd_doctor(_args(Path("config/routes.yaml"), "--vendors", "real")) == 2
    assert "TESTSIGMA_API_KEY" in capsys.readouterr().err


def test_an_answer_no_check_expected_is_a_fail_row_not_a_traceback(
    vendors: Vendors, monkeypatch: pytest.MonkeyPatch
) -> None:
    from testrelay.vendors.testsigma_tm import TestsigmaTmClient

    def malformed(*_: Any) -> list[dict[str, Any]]:
        raise KeyError("data")

    monkeypatch.setattr(TestsigmaTmClient, "list_cases", malformed)
    rows = _rows(run_doctor(parse_routes(ROUTES), _settings(vendors)))
    assert rows["route", "checkout"].result == "FAIL"
    assert rows["route", "checkout"].detail == "stopped by an unexpected answer: KeyError: 'data'"
    assert rows["credentials", "browserstack"].result == "ok"


def test_doctor_sessions_refuse_to_write() -> None:
    from testrelay_cli.doctor.readonly import WriteRefused, bearer_session

    session = bearer_session("testsigma", _closed_port_url(), "k", 1.0)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        with pytest.raises(WriteRefused):
            session.request(method, "/execution_results", json={"executionId": 1})
