"""The webhook's cold path: a fresh process that imports the handler and answers a real delivery loads
no pydantic, no YAML parser, no boto3 and no X-Ray SDK when the routes index is current (README "Cold
start"); without an index it still answers the same, validating the routes file itself."""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from testrelay.routing import write_index
from testrelay_local.apigw import http_api_event
from testrelay_local.signing import github_headers

ROOT = Path(__file__).resolve().parents[3]
PAYLOAD = (ROOT / "events" / "github" / "workflow_run.completed.payload.json").read_bytes()
SECRET = "cold-path-secret"
HEAVY = ("pydantic", "pydantic_core", "yaml", "boto3", "s3transfer", "aws_xray_sdk")

FRESH_PROCESS = """
import json, sys
sys.path[:0] = [{core!r}, {function!r}]
import app
from testrelay.ci.base import WebhookCredential
from testrelay.relay import intake

queued = []
intake.webhook_secret = lambda provider: WebhookCredential(secret={secret!r})
intake.send_jobs = lambda url, jobs: queued.extend(json.loads(job.message_body()) for job in jobs)

class Context:
    function_name = "WebhookFunction"; memory_limit_in_mb = 512; aws_request_id = "cold"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:WebhookFunction"

answer = app.lambda_handler(json.loads(open({event!r}).read()), Context())
loaded = sorted({{name.split(".")[0] for name in sys.modules}} & set({heavy!r}))
print(json.dumps({{"status": answer["statusCode"], "queued": queued, "loaded": loaded}}))
"""


def _answer(tmp_path: Path, routes_file: Path) -> dict[str, Any]:
    headers = github_headers(SECRET, PAYLOAD, "workflow_run", delivery="cold-path-1")
    event = http_api_event("POST", "/webhooks/github", headers, PAYLOAD)
    event["pathParameters"] = {"provider": "github"}
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event))
    code = FRESH_PROCESS.format(
        core=str(ROOT / "layers" / "core"),
        function=str(ROOT / "functions" / "webhook"),
        secret=SECRET,
        event=str(event_file),
        heavy=HEAVY,
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        # -S: no site hooks (the checkout's editable installs), as on Lambda; packages from PYTHONPATH.
        "PYTHONPATH": os.pathsep.join(site.getsitepackages()),
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "POWERTOOLS_METRICS_NAMESPACE": "TestRelay",
        "JOBS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
        "ROUTES_FILE": str(routes_file),
        "WEBHOOK_SECRETS_ID": "webhooks",
    }
    done = subprocess.run(  # noqa: S603 - our interpreter, our code
        [sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    file = tmp_path / "routes.yaml"
    shutil.copy(ROOT / "config" / "routes.yaml", file)
    return file


def test_with_a_current_index_the_cold_path_loads_no_heavy_module(tmp_path: Path, routes_file: Path) -> None:
    # Given the routes file and its index, as `make build` deploys them
    write_index(routes_file)
    # When a fresh process answers GitHub's real workflow_run delivery
    answer = _answer(tmp_path, routes_file)
    # Then the job is queued and none of pydantic, PyYAML, boto3, the X-Ray SDK was imported
    assert answer["status"] == 202
    assert [job["route"]["name"] for job in answer["queued"]] == ["octo-checkout"]
    assert answer["loaded"] == []


def test_without_an_index_the_same_delivery_queues_the_same_job(tmp_path: Path, routes_file: Path) -> None:
    # Given the same routes file, indexed, then the index removed
    write_index(routes_file).unlink()
    # When the same delivery arrives
    answer = _answer(tmp_path, routes_file)
    # Then the job is the same (the routes file was validated in the process instead)
    write_index(routes_file)
    indexed = _answer(tmp_path, routes_file)
    assert answer["status"] == indexed["status"] == 202

    def without_time(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{key: value for key, value in job.items() if key != "created_at"} for job in jobs]

    assert without_time(answer["queued"]) == without_time(indexed["queued"])
    assert "pydantic" in answer["loaded"]
