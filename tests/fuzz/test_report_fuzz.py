"""Property-based fuzzing of the JUnit report endpoints and the report parser.

Through WebhookFunction's real handler, with API Gateway HTTP API (v2) events, signed and unsigned: whatever
the bytes, XML shapes, encodings, query or completion JSON, a request gets a 4xx or 2xx answer (5xx only as
the documented 503 "send the request again later"), an unauthenticated one never stores or queues anything,
and the parser either reads cases or refuses with InvalidPayload, never another exception. Bounded to stay
within seconds: examples are few and small, and shrinking is the only search hypothesis does beyond them.
"""

from __future__ import annotations

import json
import string
import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testrelay.aws.secrets import forget_cached_secrets
from testrelay.errors import InvalidPayload
from testrelay.junit import parse_report
from testrelay.models.routes import JunitReading
from testrelay_cli.junit_push import sign
from testrelay_local.apigw import http_api_event
from testrelay_local.functions import load_handler
from tests.integration.handlers.conftest import WEBHOOK_SECRET, Stack, stack
from tests.support import EVENTS, FakeLambdaContext

__all__ = ["stack"]  # the moto stack fixture, shared with the handler tests

handler = load_handler("functions/webhook")
BUCKET = "results"
FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
REAL_REPORTS = sorted(path.read_bytes() for path in (EVENTS / "junit").glob("*.xml"))

# XML trees over the JUnit vocabulary (and a stranger), with the attributes runners really vary.
TAGS = ["testsuites", "testsuite", "testcase", "failure", "error", "skipped", "skip", "properties", "property"]
TAGS += ["system-out", "flakyFailure", "rerunFailure", "x"]
ATTRIBUTES = ["name", "classname", "status", "result", "time", "file", "value", "message", "tests"]
VALUES = st.sampled_from(
    ["", " ", "notrun", "disabled", "suppressed", "skipped", "run", "1,234.5", "C12", "Root Suite"]
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12) | VALUES
ENCODINGS = ["utf-8", "UTF-16", "Shift_JIS", "EUC-KR", "GBK", "Big5", "windows-1251", "latin-1", "x-unknown", "base64"]


def _element(tag: str, attributes: dict[str, str], text: str, children: list[ET.Element]) -> ET.Element:
    element = ET.Element(tag, attributes)
    element.text = text
    element.extend(children)
    return element


ELEMENTS = st.recursive(
    st.builds(
        _element,
        st.sampled_from(TAGS),
        st.dictionaries(st.sampled_from(ATTRIBUTES), TEXT, max_size=3),
        TEXT,
        st.just([]),
    ),
    lambda children: st.builds(
        _element,
        st.sampled_from(TAGS),
        st.dictionaries(st.sampled_from(ATTRIBUTES), TEXT, max_size=3),
        TEXT,
        st.lists(children, max_size=4),
    ),
    max_leaves=12,
)


@st.composite
def xml_reports(draw: st.DrawFn) -> bytes:
    """A generated tree under a JUnit root, written in some declared encoding (not always the one used)."""
    root = _element(draw(st.sampled_from(["testsuites", "testsuite"])), {}, "", draw(st.lists(ELEMENTS, max_size=4)))
    text = ET.tostring(root, encoding="unicode")
    declared = draw(st.sampled_from(ENCODINGS))
    written = declared if draw(st.booleans()) else draw(st.sampled_from(["utf-8", "shift_jis", "utf-16"]))
    try:
        body = text.encode(written)
    except (UnicodeEncodeError, LookupError):
        body = text.encode("utf-8")
    declaration = f"<?xml version='1.0' encoding='{declared}'?>".encode(
        "utf-16" if written == "utf-16" and draw(st.booleans()) else "ascii"
    )
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + declaration + body


@st.composite
def mutated_reports(draw: st.DrawFn) -> bytes:
    """A real report with a slice cut, doubled or replaced by random bytes."""
    report = draw(st.sampled_from(REAL_REPORTS))
    start = draw(st.integers(0, len(report)))
    end = draw(st.integers(start, min(len(report), start + 64)))
    middle = draw(st.sampled_from([b"", report[start:end] * 2]) | st.binary(max_size=16))
    return report[:start] + middle + report[end:]


# Generated trees weigh double: they reach the parser's corners (encodings, unnamed cases, suite-level errors).
REPORT_BODIES = st.one_of(
    xml_reports(), xml_reports(), mutated_reports(), st.binary(max_size=300), st.sampled_from(REAL_REPORTS)
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
COMPLETION_FIELDS = ["upload_id", "delivery_id", "repository", "branch", "sha", "run_url", "pipeline_name", "x"]
QUERY = st.dictionaries(st.sampled_from([*COMPLETION_FIELDS, ""]), st.text(max_size=20), max_size=3)
ROUTES = st.sampled_from(["octo-checkout", "octo-smoke", "no-such-route"]) | st.text(
    string.ascii_letters + string.digits + "-_.~%", min_size=1, max_size=12
)
HEADERS = st.dictionaries(
    st.sampled_from(["content-type", "x-testrelay-signature", "x-hub-signature-256", "content-encoding"]),
    st.text(max_size=30) | st.just("sha256=" + "0" * 64),
    max_size=3,
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
    assert status < 500 or status == 503, answer
    payload = json.loads(answer["body"])
    assert isinstance(payload, dict)
    return status, payload


def _signed(body: bytes, content_type: str = "application/xml") -> dict[str, str]:
    return {"content-type": content_type, "x-testrelay-signature": sign(WEBHOOK_SECRET, body)}


def _stored() -> int:
    return int(boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount", 0))


PATHS = st.sampled_from(["", "/uploads", "/uploads/" + "a" * 32, "/uploads/zz", "/uploads/" + "0" * 31])


@FUZZ
@given(route=ROUTES, tail=PATHS, body=REPORT_BODIES, headers=HEADERS, query=QUERY)
def test_an_unauthenticated_request_never_stores_or_queues(
    reports: Stack, route: str, tail: str, body: bytes, headers: dict[str, str], query: dict[str, str]
) -> None:
    status, answer = _call(f"/reports/junit/{route}{tail}", body, headers, urlencode(query))
    assert status in (401, 404), answer
    assert reports.queued() == []
    assert _stored() == 0


@FUZZ
@given(body=REPORT_BODIES, query=QUERY, content_type=st.sampled_from(["application/xml", "application/octet-stream"]))
def test_a_signed_report_is_accepted_with_its_cases_or_refused_with_a_reason(
    reports: Stack, body: bytes, query: dict[str, str], content_type: str
) -> None:
    status, answer = _call("/reports/junit/octo-checkout", body, _signed(body, content_type), urlencode(query))
    assert status in (202, 400), answer
    if status == 202:
        assert answer["cases"] >= 1
        assert len(answer["jobs"]) == 1
    else:
        assert answer["message"]


@FUZZ
@given(
    completion=st.dictionaries(st.sampled_from(COMPLETION_FIELDS), JSON, max_size=4) | JSON,
    own_upload=st.booleans(),
    raw=st.none() | st.binary(max_size=64),
)
def test_a_signed_upload_completion_is_accepted_or_refused_never_crashes(
    reports: Stack, completion: Any, own_upload: bool, raw: bytes | None
) -> None:
    _, started = _call("/reports/junit/octo-checkout/uploads", b"", _signed(b""))
    if own_upload and isinstance(completion, dict):
        completion["upload_id"] = started["upload_id"]
    body = raw if raw is not None else json.dumps(completion).encode()
    status, answer = _call(started["complete_path"], body, _signed(body, "application/json"))
    # Nothing was PUT to the pre-signed URL: a completion naming its upload finds nothing there (409)
    assert status in (400, 409), answer


@settings(max_examples=150, deadline=None, derandomize=True)
@given(report=REPORT_BODIES, trcli=st.booleans())
def test_the_parser_reads_cases_or_refuses_with_invalid_payload(report: bytes, trcli: bool) -> None:
    reading = JunitReading(trcli_ids=trcli)
    try:
        results = list(parse_report(_Chunked(report), reading))
    except InvalidPayload as exc:
        refusal: str | None = str(exc)
    else:
        refusal = None
        assert results
        assert all(result.name.strip() for result in results)
    assert refusal is None or refusal.startswith("JUnit report")


class _Chunked:
    """A stream that hands out a few bytes per read, as a network body may: no state may hang on chunk edges."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, size: int = -1) -> bytes:
        chunk, self._data = self._data[:7], self._data[7:]
        return chunk
