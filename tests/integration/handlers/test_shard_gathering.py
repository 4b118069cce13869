"""A sharded CI run's reports through WebhookFunction's real handler, then GatherShards' decisions and
the merge, on moto's DynamoDB and S3: the window, the seal, repeats, and the merge policies."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest

from testrelay.aws.secrets import forget_cached_secrets
from testrelay.errors import InvalidPayload
from testrelay.models.job import Job
from testrelay.models.routes import RouteAction
from testrelay.relay import shards
from testrelay_cli.junit_push import shard_line, sign
from testrelay_local.apigw import http_api_event
from testrelay_local.functions import load_handler
from tests.integration.handlers.conftest import WEBHOOK_SECRET, Stack
from tests.support import FakeLambdaContext

handler = load_handler("functions/webhook")
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


def _report(results: dict[str, str]) -> bytes:
    child = {"failed": "<failure/>", "skipped": "<skipped/>", "passed": ""}
    cases = "".join(f'<testcase classname="t" name="{name}">{child[r]}</testcase>' for name, r in results.items())
    return f"<testsuite name='s'>{cases}</testsuite>".encode()


def _shard(body: bytes, **label: str) -> tuple[int, dict[str, Any]]:
    headers = {
        "content-type": "application/xml",
        "x-testrelay-signature": sign(WEBHOOK_SECRET, shard_line(label) + body),
    }
    event = http_api_event("POST", "/reports/junit/octo-checkout", headers, body, urlencode(label))
    answer = handler(event, FakeLambdaContext())
    return int(answer["statusCode"]), json.loads(answer["body"])


def _done(**fields: Any) -> tuple[int, dict[str, Any]]:
    body = json.dumps(fields).encode()
    headers = {"content-type": "application/json", "x-testrelay-signature": sign(WEBHOOK_SECRET, body)}
    answer = handler(http_api_event("POST", "/reports/junit/octo-checkout/done", headers, body), FakeLambdaContext())
    return int(answer["statusCode"]), json.loads(answer["body"])


def _job(reports: Stack, reruns: str = "worst") -> Job:
    """The queued job, with the route's shard window as a test wants it."""
    queued = reports.queued()[0]
    route = RouteAction.model_validate(
        {**queued["route"], "junit": {"shards": {"reruns": reruns, "settle_seconds": 60, "max_wait_seconds": 600}}}
    )
    return Job.model_validate({**queued, "route": route.model_dump()})


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    now = shards.time.time()
    monkeypatch.setattr(shards.time, "time", lambda: now + seconds)


def _merged(job: Job) -> dict[str, str]:
    return {results[0].name: results[0].status.value for results in shards.shard_cases(job)}


def test_gathering_waits_for_the_window_then_seals_once_naming_the_missing_shard(
    reports: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given shards 1 and 3 of 3
    assert _shard(_report({"a": "passed"}), run_key="r1", shard="1/3")[0] == 202
    assert _shard(_report({"c": "passed"}), run_key="r1", shard="3/3")[0] == 202
    job = _job(reports)
    # When GatherShards looks at once, it waits (a Wait state), never longer than a look apart
    look = shards.gather(job)
    assert look["complete"] is False
    assert 1 <= look["next_wait_seconds"] <= job.route.junit.shards.check_seconds
    # And once no shard came for settle_seconds it seals, naming the one that never came
    _later(monkeypatch, 61)
    sealed = shards.gather(job)
    assert sealed == {
        "complete": True,
        "received": 2,
        "expected": 3,
        "missing": [2],
        "reason": "no new shard for settle_seconds (60)",
    }
    # And a repeated look (a retried step) gives the same, sealed set
    assert shards.gather(job) == sealed
    # And shard 2 now is refused with the reason, and counted
    status, answer = _shard(_report({"b": "passed"}), run_key="r1", shard="2/3")
    assert (status, answer["status"]) == (409, "run_closed")
    assert shards.book().get(job.id)["late_refused"] == 1
    assert _merged(job) == {"a": "passed", "c": "passed"}


def test_max_wait_seals_even_while_shards_keep_coming(reports: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _shard(_report({"a": "passed"}), run_key="r2", shard="1/2")[0] == 202
    job = _job(reports)
    _later(monkeypatch, 601)
    assert shards.gather(job)["reason"] == "max_wait_seconds (600) passed"


@pytest.mark.parametrize(("reruns", "expected"), [("worst", "failed"), ("last", "passed")])
def test_a_case_of_several_attempts_merges_as_the_route_says(reports: Stack, reruns: str, expected: str) -> None:
    # Given attempt 1 of shard 1 failing "flaky", attempt 2 re-running only it (it passes), and shard 2
    _shard(_report({"flaky": "failed", "steady": "passed"}), run_key="r3", shard="1/2")
    _shard(_report({"flaky": "passed"}), run_key="r3", shard="1/2", attempt="2")
    _shard(_report({"other": "skipped", "flaky": "passed"}), run_key="r3", shard="2/2")
    job = _job(reports, reruns)
    assert shards.gather(job)["reason"] == "all shards arrived"
    # Then each case once: "steady" keeps attempt 1's result, "flaky" as the policy says
    assert _merged(job) == {"flaky": expected, "steady": "passed", "other": "skipped"}


def test_done_without_any_report_fails_the_job_with_the_reason(reports: Stack) -> None:
    status, answer = _done(run_key="r4", shards=2)
    assert (status, answer["done"], answer["received"], answer["expected"]) == (202, True, 0, 2)
    job = _job(reports)
    with pytest.raises(InvalidPayload, match="the CI said done, but no report arrived"):
        shards.gather(job)


def test_unsigned_run_keys_and_bad_counts_are_refused(reports: Stack) -> None:
    body = _report({"a": "passed"})
    # A run key the signature does not cover (signed over the body only) is not the signer's
    headers = {"content-type": "application/xml", "x-testrelay-signature": sign(WEBHOOK_SECRET, body)}
    event = http_api_event("POST", "/reports/junit/octo-checkout", headers, body, "run_key=r5&shard=1/2")
    assert handler(event, FakeLambdaContext())["statusCode"] == 401
    assert _shard(body, run_key="r5", shard="0/2")[0] == 400
    assert _done(run_key="r5", shards=True)[0] == 400
    assert reports.queued() == []
