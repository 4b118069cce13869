"""JUnit reports through the relay's HTTP endpoint, pushed as `testrelay push-junit` does: in the request
or through the pre-signed S3 upload, parsed, matched and written to Test Management, once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from testrelay_cli.cli import main
from testrelay_cli.junit_push import PushFailed, push_junit
from testrelay_local.runtime import LocalRuntime
from tests.support import EVENTS, ledger, tm_run_cases, wait_for_execution

ROUTES_FILE = Path(__file__).parent / "junit_routes.yaml"
ROUTE = "junit-checkout"


def _base(runtime: LocalRuntime) -> str:
    return runtime.webhook_url("generic").split("/webhooks/", 1)[0]


def _statuses(run: dict[str, object]) -> dict[str, str]:
    cases = run["test_run_cases"]
    assert isinstance(cases, list)
    return {c["human_id"]: c["status_name"] for c in cases}


def test_a_pytest_report_lands_in_test_management_once(runtime: LocalRuntime) -> None:
    # Given pytest's report: ids in properties (two on one case), in a name, an error and a skip
    report = EVENTS / "junit" / "pytest.xml"
    context = {"repository": "acme/shop", "sha": "0123456789abcdef0123456789abcdef01234567"}
    # When the CI step pushes it
    answer = push_junit(report, ROUTE, _base(runtime), runtime.webhook_secret, context)
    # Then it is accepted, and its job writes each case's status to Test Management
    [job_id] = answer["jobs"]
    assert answer["cases"] == 4
    assert wait_for_execution(runtime, job_id)["status"] == "SUCCEEDED"
    [tm_run] = tm_run_cases(runtime).values()
    assert _statuses(tm_run) == {
        "TC-101": "Passed",
        "TC-102": "Failed",
        "TC-103": "Failed",
        "TC-104": "Failed",
        "TC-105": "Skipped",
    }
    assert tm_run["title"] == "JUnit acme/shop@0123456"
    record = ledger(runtime).get_job(job_id)
    assert (record["state"], record["summary"]) == ("reported", "1 passed, 2 failed, 1 skipped")
    # And the same report pushed again (a retried CI step) changes nothing
    assert push_junit(report, ROUTE, _base(runtime), runtime.webhook_secret, context)["jobs"] == [job_id]
    time.sleep(1.5)
    assert len(tm_run_cases(runtime)) == 1


def test_a_large_report_goes_through_the_presigned_upload(
    runtime: LocalRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given Surefire's bare <testsuite>, pushed through the upload a report over the request limit takes
    args = [str(EVENTS / "junit" / "surefire.xml"), "--route", ROUTE, "--url", _base(runtime), "--upload"]
    args += ["--secret", runtime.webhook_secret, "--delivery", "acme-build-78", "--json"]
    # When `testrelay push-junit` runs
    assert main(["push-junit", *args]) == 0
    answer = json.loads(capsys.readouterr().out)
    # Then the upload becomes a job whose results land in Test Management, matched by name and title
    assert answer["status"] == "accepted"
    assert answer["upload_id"]
    [job_id] = answer["jobs"]
    assert wait_for_execution(runtime, job_id)["status"] == "SUCCEEDED"
    [tm_run] = tm_run_cases(runtime).values()
    assert _statuses(tm_run) == {"TC-106": "Passed", "TC-107": "Passed", "TC-108": "Failed"}


def test_a_malformed_report_is_refused_and_nothing_runs(runtime: LocalRuntime, tmp_path: Path) -> None:
    # Given a report cut off mid-way (the runner crashed while writing it)
    broken = tmp_path / "report.xml"
    broken.write_bytes((EVENTS / "junit" / "nested.xml").read_bytes()[:-60])
    # When it is pushed, the CI step fails with the place of the error
    with pytest.raises(PushFailed, match=r"HTTP 400: JUnit report is not well-formed XML: .* at line \d+"):
        push_junit(broken, ROUTE, _base(runtime), runtime.webhook_secret)
    # And nothing is written anywhere
    time.sleep(1.0)
    assert tm_run_cases(runtime) == {}
