"""How fast the relay answers a CI, and how long the whole demo takes.

Prints: WebhookFunction latency (warm, in-process, moto for SQS/Secrets Manager) for the real
GitHub workflow_run payload, against the signature check alone as the baseline measured in the same
run; and the wall time of one job through the local runtime (trigger → poll → write-back → report).

Run: make bench   (or .venv/bin/python bench/handler_latency.py [--requests N])
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = (ROOT / "events" / "github" / "workflow_run.completed.payload.json").read_bytes()
SECRET = "bench-secret"


class _Context:
    function_name = "WebhookFunction"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:WebhookFunction"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": statistics.median(ordered) * 1000,
        "p95": ordered[int(len(ordered) * 0.95) - 1] * 1000,
        "max": ordered[-1] * 1000,
    }


def webhook_latency(requests: int) -> tuple[dict[str, float], dict[str, float]]:
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",
        ROUTES_FILE=str(ROOT / "config" / "routes.yaml"),
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        queue = boto3.client("sqs").create_queue(QueueName="jobs")["QueueUrl"]
        secret = boto3.client("secretsmanager").create_secret(
            Name="webhooks", SecretString=json.dumps({"github": SECRET})
        )["ARN"]
        os.environ.update(JOBS_QUEUE_URL=queue, WEBHOOK_SECRETS_ID=secret)
        from testrelay.ci.base import WebhookCredential
        from testrelay.ci.github import GitHubProvider
        from testrelay_local.apigw import http_api_event
        from testrelay_local.functions import load_handler
        from testrelay_local.signing import github_headers

        handler = load_handler("functions/webhook")
        provider = GitHubProvider()
        credential = WebhookCredential(secret=SECRET)
        full, baseline = [], []
        for index in range(requests + 5):
            headers = github_headers(SECRET, PAYLOAD, "workflow_run", str(uuid.uuid4()))
            event = http_api_event("POST", "/webhooks/github", headers, PAYLOAD)
            started = time.perf_counter()
            answer: dict[str, Any] = handler(event, _Context())
            elapsed = time.perf_counter() - started
            assert answer["statusCode"] == 202, answer
            lowered = {k.lower(): v for k, v in headers.items()}
            started = time.perf_counter()
            provider.authenticate(lowered, PAYLOAD, credential)
            provider.parse(lowered, PAYLOAD)
            check = time.perf_counter() - started
            if index >= 5:  # the first calls are cold (imports, client creation)
                full.append(elapsed)
                baseline.append(check)
    return _percentiles(full), _percentiles(baseline)


def demo_wall_time() -> float:
    from testrelay_local.demo import run_demo

    started = time.perf_counter()
    code = run_demo(emit=lambda _line: None)
    assert code == 0, "the demo failed"
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    full, baseline = webhook_latency(args.requests)
    print(f"WebhookFunction, warm, {args.requests} deliveries of the real workflow_run payload:")
    print(
        f"  whole handler (verify, parse, route, enqueue to moto SQS): "
        f"p50 {full['p50']:.2f} ms  p95 {full['p95']:.2f} ms  max {full['max']:.2f} ms"
    )
    print(
        f"  baseline, signature check + parse only:                    "
        f"p50 {baseline['p50']:.3f} ms  p95 {baseline['p95']:.3f} ms"
    )
    print(f"  ratio handler/baseline (p50): {full['p50'] / baseline['p50']:.1f}x")
    wall = demo_wall_time()
    print(f"demo (make run) wall time, runtime start to commit status: {wall:.1f} s")


if __name__ == "__main__":
    main()
