"""POST /reports/junit/{route} through WebhookFunction's real handler: what a CI step gets back, and
what is stored and queued (nothing at all when the report is refused)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from testrelay.aws.secrets import forget_cached_secrets
from testrelay.errors import InvalidPayload
from testrelay_cli.junit_push import sign
from testrelay_local.apigw import http_api_event
from testrelay_local.functions import load_handler
from tests.integration.handlers.conftest import WEBHOOK_SECRET, Stack
from tests.support import EVENTS, FakeLambdaContext

handler = load_handler("functions/webhook")
REPORT = (EVENTS / "junit" / "pytest.xml").read_bytes()
BUCKET = "results"


@pytest.fixture
def reports(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("RESULTS_BUCKET", BUCKET)
    secrets = boto3.client("secretsmanager")
    arn = secrets.list_secrets()["SecretList"][0]["ARN"]
    secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({"github": "x", "generic": WEBHOOK_SECRET}))
    forget_cached_secrets()
    return stack


def _post(path: str, body: bytes, secret: str = WEBHOOK_SECRET, query: str = "") -> tuple[int, dict[str, Any]]:
    headers = {"content-type": "application/xml", "x-testrelay-signature": sign(secret, body)}
    answer = handler(http_api_event("POST", path, headers, body, query), FakeLambdaContext())
    return answer["statusCode"], json.loads(answer["body"])


def _stored() -> list[str]:
    return [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def test_a_signed_report_is_stored_and_queued_as_one_junit_job(reports: Stack) -> None:
    # When a CI step posts its report with its context
    status, answer = _post("/reports/junit/octo-checkout", REPORT, query="repository=acme/shop&sha=abc123")
    # Then it is accepted with its case count, stored raw, and one junit job naming it is queued
    assert (status, answer["status"], answer["cases"]) == (202, "accepted", 4)
    [job] = reports.queued()
    assert (job["kind"], job["id"], job["route"]["name"]) == ("junit", answer["jobs"][0], "octo-checkout")
    assert (job["event"]["repository"], job["event"]["commit_sha"]) == ("acme/shop", "abc123")
    assert _stored() == [job["report_key"]] == [f"reports/{job['id']}.xml"]
    # And the same report sent again is the same job, whatever its (unsigned) labels say
    assert _post("/reports/junit/octo-checkout", REPORT, query="repository=other/repo")[1]["jobs"] == answer["jobs"]


def test_a_dedupe_key_in_the_unsigned_query_is_refused(reports: Stack) -> None:
    # A captured report replayed under a new delivery id must not run again
    status, answer = _post("/reports/junit/octo-checkout", REPORT, query="delivery_id=run-77")
    assert (status, answer["status"]) == (400, "invalid")
    assert "not signed" in answer["message"]
    assert reports.queued() == []
    assert _stored() == []


@pytest.mark.parametrize(
    ("body", "secret", "expected"),
    [
        (REPORT, "not-the-secret", (401, "unauthorized")),
        (REPORT[:-40], WEBHOOK_SECRET, (400, "invalid")),
        (b"", WEBHOOK_SECRET, (400, "invalid")),
        (b"<testsuites/>", WEBHOOK_SECRET, (400, "invalid")),
    ],
)
def test_a_refused_report_stores_and_queues_nothing(
    reports: Stack, body: bytes, secret: str, expected: tuple[int, str]
) -> None:
    status, answer = _post("/reports/junit/octo-checkout", body, secret)
    assert (status, answer["status"]) == expected
    if status == 400:
        assert "JUnit report" in answer["message"]
    assert reports.queued() == []
    assert _stored() == []


def test_a_report_for_an_unknown_route_is_404(reports: Stack) -> None:
    status, answer = _post("/reports/junit/no-such-route", REPORT)
    assert (status, answer["status"]) == (404, "unknown_route")
    assert reports.queued() == []


def test_a_large_report_goes_through_a_presigned_upload(reports: Stack) -> None:
    # Given an upload started with a signed request
    status, started = _post("/reports/junit/octo-checkout/uploads", b"")
    assert status == 201
    done = json.dumps(
        {"upload_id": started["upload_id"], "delivery_id": "run-78", "run_url": "https://ci.example/runs/78"}
    ).encode()
    # When it is completed before anything was uploaded, it is refused
    assert _post(started["complete_path"], done)[0] == 409
    # When the report is PUT to the pre-signed URL and the upload completed
    assert requests.put(started["upload_url"], data=REPORT, timeout=10).status_code == 200
    status, answer = _post(started["complete_path"], done)
    # Then one junit job reads the uploaded report
    assert status == 202
    [job] = reports.queued()
    assert answer["jobs"] == [job["id"]]
    assert job["report_key"] == f"reports/uploads/{started['upload_id']}.xml"
    assert job["event"]["run_url"] == "https://ci.example/runs/78"


def test_a_completion_is_bound_to_the_upload_it_names(reports: Stack) -> None:
    # Given a signed completion of one upload, and another upload holding other content
    _, first = _post("/reports/junit/octo-checkout/uploads", b"")
    _, second = _post("/reports/junit/octo-checkout/uploads", b"")
    assert requests.put(second["upload_url"], data=REPORT, timeout=10).status_code == 200
    done = json.dumps({"upload_id": first["upload_id"]}).encode()
    # When it is replayed against the other upload's path
    status, answer = _post(second["complete_path"], done)
    # Then it is refused and nothing is queued
    assert (status, answer["status"]) == (400, "invalid")
    assert "another upload" in answer["message"]
    assert reports.queued() == []


def test_a_report_with_an_unnamed_case_is_accepted(reports: Stack) -> None:
    # Surefire 3 writes <testcase name=""> when @BeforeAll fails: the run that most needs syncing
    status, answer = _post("/reports/junit/octo-checkout", (EVENTS / "junit" / "surefire-beforeall.xml").read_bytes())
    assert (status, answer["cases"]) == (202, 1)
    assert len(reports.queued()) == 1


def test_a_report_in_a_legacy_encoding_is_accepted_and_an_unknown_encoding_is_named(reports: Stack) -> None:
    report = (
        "<?xml version='1.0' encoding='Shift_JIS'?><testsuite name='決済'><testcase name='カード TC-1'/></testsuite>"
    )
    status, answer = _post("/reports/junit/octo-checkout", report.encode("shift_jis"))
    assert (status, answer["cases"]) == (202, 1)
    status, answer = _post(
        "/reports/junit/octo-checkout", b"<?xml version='1.0' encoding='x-mac-klingon'?><testsuite/>"
    )
    assert (status, answer["status"]) == (400, "invalid")
    assert "encoding 'x-mac-klingon'" in answer["message"]


def test_a_report_that_cannot_be_stored_is_answered_503_and_nothing_is_queued(reports: Stack) -> None:
    # Given a results bucket S3 refuses (here: one that does not exist)
    boto3.client("s3").delete_bucket(Bucket=BUCKET)
    status, answer = _post("/reports/junit/octo-checkout", REPORT)
    # Then the CI step is told to send it again, and no job names a report that is not there
    assert (status, answer["status"]) == (503, "error")
    assert "send the request again later" in answer["message"]
    assert reports.queued() == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"upload_id": "x", "run_url": ' + b"1" * 5000 + b"}",
        b'{"upload_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"upload_id": "x", "repository": "acme/\\ud800"}',
    ],
)
def test_a_completion_json_cannot_load_or_carry_is_refused(reports: Stack, body: bytes) -> None:
    _, started = _post("/reports/junit/octo-checkout/uploads", b"")
    status, answer = _post(started["complete_path"], body)
    assert (status, answer["status"]) == (400, "invalid")
    assert reports.queued() == []


collect = load_handler("functions/collect_results")
JUNIT_RUN = {"run_id": 0, "url": "", "triggered_at": 0, "source": "junit"}


def _uploaded_job(reports: Stack, report: bytes) -> dict[str, Any]:
    _, started = _post("/reports/junit/octo-checkout/uploads", b"")
    assert requests.put(started["upload_url"], data=report, timeout=10).status_code == 200
    assert _post(started["complete_path"], json.dumps({"upload_id": started["upload_id"]}).encode())[0] == 202
    [job] = reports.queued()
    return job


def test_an_uploaded_report_that_does_not_read_fails_its_job_with_the_reason(reports: Stack) -> None:
    # Given an uploaded report declaring an encoding it is not written in (checked only when its job runs)
    job = _uploaded_job(
        reports, b"<?xml version='1.0' encoding='EUC-KR'?><testsuite><testcase name='\xff\xfe'/></testsuite>"
    )
    # When its job collects the results, the task fails with InvalidPayload naming the problem, not a raw error
    with pytest.raises(InvalidPayload, match="is not valid EUC-KR"):
        collect({"job": job, "run": JUNIT_RUN}, FakeLambdaContext())


def test_a_route_reading_trcli_ids_carries_the_option_into_its_jobs(reports: Stack) -> None:
    # Given a route that reads trcli's case ids, as tokens TC-<id>
    routes = Path(os.environ["ROUTES_FILE"])
    routes.write_text(
        routes.read_text()
        + "  - name: from-trcli\n"
        + "    testsigma: {test_plan_id: 9}\n"
        + "    junit: {trcli_ids: true, trcli_id_format: 'TC-{id}'}\n"
    )
    report = (EVENTS / "junit" / "trcli-test-id-property.xml").read_bytes()
    assert _post("/reports/junit/from-trcli", report)[0] == 202
    # When its job collects the report, the ids are the tokens the targets match by
    [job] = reports.queued()
    assert job["route"]["junit"] | {"shards": None} == {"trcli_ids": True, "trcli_id_format": "TC-{id}", "shards": None}
    collected = collect({"job": job, "run": JUNIT_RUN}, FakeLambdaContext())
    assert [item["ids"] for item in collected["items"]] == [
        ["TC-1050381"],
        ["TC-1050382", "TC-1050383", "TC-1050384"],
        ["TC-1050385", "TC-1050386", "TC-1050387", "TC-1050388"],
    ]
