"""Property-based fuzzing of sharded CI runs' entry points: the shard argument and run key, as a report's
query (signed), an upload completion's JSON, a "done" call, and `testrelay push-junit`'s command line.

Whatever the values, a request gets a 2xx or 4xx answer (never a 5xx), a shard is recorded in its slot
only when accepted, and the command line answers with exit code 2 and one JSON error under --json, never a traceback.
"""

from __future__ import annotations

import json
import string
from typing import Any
from urllib.parse import parse_qs, urlencode

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testrelay.aws.secrets import forget_cached_secrets
from testrelay.aws.shard_book import ShardBook
from testrelay.models.shards import ShardLabel, ShardRefused, parse_shard
from testrelay_cli.cli import main
from testrelay_cli.junit_push import shard_line, sign
from testrelay_local.apigw import http_api_event
from testrelay_local.functions import load_handler
from tests.integration.handlers.conftest import WEBHOOK_SECRET, Stack, stack
from tests.support import EVENTS, FakeLambdaContext

__all__ = ["stack"]  # the moto stack fixture, shared with the handler tests

handler = load_handler("functions/webhook")
BUCKET = "results"
REPORT = (EVENTS / "junit" / "pytest.xml").read_bytes()
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
# What CIs put there (GitHub run ids, CircleCI's 0-based node index, matrix labels) and what they should not.
SHARDS = st.sampled_from(
    ["1/8", "8/8", "0/8", "9/8", "3", "3/0", " 2 / 4 ", "1/1001", "-1/2", "1/2/3", "a/b", "", "٣/٨"]
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
RUN_KEYS = st.sampled_from(["7012345678", "gh-7012345678-2", "jenkins-folder job-42", "", " ", "x" * 201, "7\n"]) | TEXT
ATTEMPTS = st.sampled_from(["1", "2", "0", "1000", "1001", "-1", "01", "1.5", "", "2\n", "\u0663"]) | TEXT
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


@pytest.fixture
def reports(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("RESULTS_BUCKET", BUCKET)
    secrets = boto3.client("secretsmanager")
    arn = secrets.list_secrets()["SecretList"][0]["ARN"]
    secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({"github": "x", "generic": WEBHOOK_SECRET}))
    forget_cached_secrets()
    return stack


def _call(path: str, body: bytes, headers: dict[str, str], query: str = "") -> tuple[int, dict[str, Any]]:
    answer = handler(http_api_event("POST", path, headers, body, query), FakeLambdaContext())
    status = int(answer["statusCode"])
    assert status < 500, answer
    payload = json.loads(answer["body"])
    assert isinstance(payload, dict)
    return status, payload


def _slots(stack: Stack, job_id: str) -> dict[str, Any]:
    record = ShardBook(boto3.resource("dynamodb").Table(stack.table)).get(job_id) or {}
    return dict(record.get("shards") or {})


@settings(max_examples=300, deadline=None, derandomize=True)
@given(run_key=RUN_KEYS | JSON | st.just("gh-\ud800"), shard=SHARDS | TEXT | JSON, attempt=ATTEMPTS | JSON)
def test_a_shard_label_is_read_or_refused_with_a_reason(run_key: Any, shard: Any, attempt: Any) -> None:
    try:
        label = ShardLabel.of(run_key, shard, attempt)
    except ShardRefused as exc:
        refusal = str(exc)
        assert refusal
        return
    assert label.run_key == run_key
    assert 1 <= label.attempt <= 1000
    if label.index is not None:
        assert 1 <= label.index <= (label.count or 1000)
        assert parse_shard(label.shard) == (label.index, label.count)


@FUZZ
@given(run_key=RUN_KEYS, shard=SHARDS | TEXT, attempt=ATTEMPTS, extra=st.sampled_from(["", "repository=acme/shop"]))
def test_a_signed_shard_is_accepted_in_its_slot_or_refused_with_a_reason(
    reports: Stack, run_key: str, shard: str, attempt: str, extra: str
) -> None:
    query = "&".join(
        part for part in (urlencode({"run_key": run_key, "shard": shard, "attempt": attempt}), extra) if part
    )
    # Signed as the relay reads the query (API Gateway decodes it; a blank value is no value)
    decoded = {k: ",".join(v) for k, v in parse_qs(query).items()}
    body = REPORT
    sharded = any(name in decoded for name in ("run_key", "shard", "attempt"))
    headers = {
        "content-type": "application/xml",
        "x-testrelay-signature": sign(WEBHOOK_SECRET, shard_line(decoded) + body if sharded else body),
    }
    status, answer = _call("/reports/junit/octo-checkout", body, headers, query)
    assert status in (202, 400), answer
    if status == 202:
        [job_id] = answer["jobs"]
        assert answer["cases"] == 4
        if sharded:
            assert answer["run_key"] == decoded["run_key"]
            assert _slots(reports, job_id)
    else:
        assert answer["message"]
    # The same bytes signed without the shard line: the run key is not the signer's, so nothing happens
    unsigned = {"content-type": "application/xml", "x-testrelay-signature": sign(WEBHOOK_SECRET, body)}
    if sharded:
        assert _call("/reports/junit/octo-checkout", body, unsigned, query)[0] == 401


@FUZZ
@given(done=st.dictionaries(st.sampled_from(["run_key", "shards", "repository", "sha", "x"]), JSON, max_size=4) | JSON)
def test_a_signed_done_call_is_accepted_or_refused_never_crashes(reports: Stack, done: Any) -> None:
    body = json.dumps(done).encode()
    headers = {"content-type": "application/json", "x-testrelay-signature": sign(WEBHOOK_SECRET, body)}
    status, answer = _call("/reports/junit/octo-checkout/done", body, headers)
    assert status in (202, 400), answer
    if status == 202:
        assert answer["done"] is True
        assert reports.queued()


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(["run_key", "shard", "attempt"]), JSON | SHARDS, min_size=1, max_size=3))
def test_a_sharded_upload_completion_is_accepted_or_refused_never_crashes(
    reports: Stack, fields: dict[str, Any]
) -> None:
    _, started = _call(
        "/reports/junit/octo-checkout/uploads", b"", {"x-testrelay-signature": sign(WEBHOOK_SECRET, b"")}
    )
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"reports/uploads/{started['upload_id']}.xml", Body=REPORT)
    body = json.dumps({**fields, "upload_id": started["upload_id"]}).encode()
    headers = {"content-type": "application/json", "x-testrelay-signature": sign(WEBHOOK_SECRET, body)}
    status, answer = _call(started["complete_path"], body, headers)
    assert status in (202, 400), answer


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    run_key=st.none() | st.text(string.printable, max_size=12),
    shard=st.none() | SHARDS,
    attempt=st.none() | st.sampled_from(["2", "0", "x", "1001"]),
    done=st.booleans(),
    file=st.booleans(),
)
def test_push_junit_never_shows_a_traceback(
    capsys: pytest.CaptureFixture[str],
    run_key: str | None,
    shard: str | None,
    attempt: str | None,
    done: bool,
    file: bool,
) -> None:
    # Nothing listens on port 9: a valid command line fails at the connection, with one line too
    args = ["push-junit", *([str(EVENTS / "junit" / "pytest.xml")] if file else []), "--route", "r"]
    args += ["--url", "http://127.0.0.1:9", "--secret", "s"]
    for flag, value in (("--run-key", run_key), ("--shard", shard), ("--attempt", attempt)):
        if value is not None:
            args += [flag, value]
    args += ["--done", "--json"] if done else ["--json"]
    code = main(args)
    captured = capsys.readouterr()
    assert code == 2, captured
    assert "Traceback" not in captured.err + captured.out
    # One JSON document saying what is wrong (the refused connection, or the argument)
    answer = json.loads(captured.out)
    assert answer["error"]
    assert "internal error" not in answer["error"]
