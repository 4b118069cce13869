"""Cold start of the webhook: a fresh process that imports the handler and answers its first request.

Three kinds of fresh Python process, run in interleaved rounds (so the machine's load hits each kind
alike), each measured from spawn to exit in CPU time (user + system of the child: what its init costs,
little disturbed by other work on a shared machine; moto's side is in this process, not counted) and
in wall time:

- floor: imports boto3 and makes an SQS client (the least a function that enqueues can do, written
  the usual way; the issue's baseline);
- botocore floor: makes an SQS client from a botocore session, without boto3 (what the relay's
  clients do: the least a function that enqueues can do at all);
- powertools: a typical Powertools handler (Logger + Tracer + Metrics decorators), imported and invoked once;
- webhook: functions/webhook/app.py imported with the template's environment and invoked once with
  GitHub's real workflow_run payload, signed, against moto (Secrets Manager, SQS) on loopback.

Every process runs with `python -S` and the virtualenv's site-packages on PYTHONPATH: as on Lambda, no
site hooks run (the editable installs' import finders of this checkout would add a constant to each).

Prints each kind's medians and the ratios to both floors; the goal is webhook <= 1.25 x floor (CPU).
With --profile, also the webhook's largest import self-times (python -X importtime).

Run: .venv/bin/python bench/cold_start.py [--rounds 9] [--profile]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import site
import statistics
import subprocess
import sys
import time
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "local"), str(ROOT / "layers" / "core")]

from testrelay_local.apigw import http_api_event  # noqa: E402
from testrelay_local.signing import github_headers  # noqa: E402

PAYLOAD = (ROOT / "events" / "github" / "workflow_run.completed.payload.json").read_bytes()
SECRET = "bench-secret"
GOAL = 1.25

FLOOR = "import boto3\nboto3.client('sqs')\n"
BOTOCORE_FLOOR = "import botocore.session\nbotocore.session.get_session().create_client('sqs')\n"

POWERTOOLS = """
from aws_lambda_powertools import Logger, Metrics, Tracer
logger, tracer, metrics = Logger(), Tracer(), Metrics(namespace="Bench")

@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event, context):
    logger.info("hello")
    return {"statusCode": 200}

class Context:
    function_name = "bench"; memory_limit_in_mb = 512; aws_request_id = "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"

handler({}, Context())
"""

WEBHOOK = """
import json, sys
sys.path[:0] = [{core!r}, {function!r}]
import app

class Context:
    function_name = "WebhookFunction"; memory_limit_in_mb = 512; aws_request_id = "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:WebhookFunction"
    def get_remaining_time_in_millis(self): return 10000

answer = app.lambda_handler(json.loads(open({event!r}).read()), Context())
assert answer["statusCode"] == 202, answer
"""


def _lambda_env(endpoint: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("POWERTOOLS_", "AWS_"))}
    env.update(
        PYTHONPATH=os.pathsep.join(site.getsitepackages()),
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
        AWS_LAMBDA_FUNCTION_NAME="bench",
        AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR",
        POWERTOOLS_SERVICE_NAME="testrelay",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_NAMESPACE="TestRelay",
        PYTHONDONTWRITEBYTECODE="",
    )
    return env


def _webhook_env(base: dict[str, str], queue_url: str, secret_arn: str) -> dict[str, str]:
    """What template.yaml gives WebhookFunction (Globals + its own variables)."""
    return {
        **base,
        "AWS_LAMBDA_FUNCTION_NAME": "WebhookFunction",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
        "JOBS_QUEUE_URL": queue_url,
        "ROUTES_FILE": str(ROOT / "config" / "routes.yaml"),
        "WEBHOOK_SECRETS_ID": secret_arn,
        "AWS_CONNECT_TIMEOUT_SECONDS": "1",
        "AWS_READ_TIMEOUT_SECONDS": "2",
        "AWS_CALL_ATTEMPTS": "2",
    }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(code: str, env: dict[str, str], extra: tuple[str, ...] = ()) -> tuple[float, float, str]:
    """(CPU seconds, wall seconds, stderr) of one fresh process."""
    cpu, started = _cpu(), time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-S", *extra, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    elapsed, used = time.perf_counter() - started, _cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"bench process failed:\n{done.stderr[-3000:]}")
    return used, elapsed, done.stderr


def _profile(code: str, env: dict[str, str], top: int = 12) -> None:
    _, _, stderr = _run(code, env, ("-X", "importtime"))
    rows = []
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            self_us, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
            if self_us.isdigit():
                rows.append((int(self_us), int(cumulative), name))
    print(f"\nwebhook: largest import self-times (of {sum(r[0] for r in rows) / 1000:.0f} ms imports)")
    for self_us, cumulative, name in sorted(rows, reverse=True)[:top]:
        print(f"  {self_us / 1000:7.1f} ms self  {cumulative / 1000:7.1f} ms cumulative  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--profile", action="store_true", help="print the webhook's largest import self-times")
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request lines
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        aws = {"endpoint_url": endpoint, "region_name": "us-east-1"}
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")
        queue_url = boto3.client("sqs", **aws).create_queue(QueueName="jobs")["QueueUrl"]
        secret_arn = boto3.client("secretsmanager", **aws).create_secret(
            Name="webhooks", SecretString=json.dumps({"github": SECRET})
        )["ARN"]
        base = _lambda_env(endpoint)
        webhook_env = _webhook_env(base, queue_url, secret_arn)
        event_file = ROOT / ".bench-cold-start-event.json"
        webhook_code = WEBHOOK.format(
            core=str(ROOT / "layers" / "core"), function=str(ROOT / "functions" / "webhook"), event=str(event_file)
        )
        kinds = {
            "floor (boto3 + SQS client)": (FLOOR, base),
            "botocore floor (SQS client, no boto3)": (BOTOCORE_FLOOR, base),
            "powertools (Logger+Tracer+Metrics handler)": (POWERTOOLS, base),
            "webhook (import + first request)": (webhook_code, webhook_env),
        }
        cpu: dict[str, list[float]] = {name: [] for name in kinds}
        wall: dict[str, list[float]] = {name: [] for name in kinds}
        try:
            for round_no in range(args.rounds + 1):
                for name, (code, env) in kinds.items():
                    # Every request is a new delivery (a redelivery would be answered from the same path).
                    delivery = f"cold-{round_no}-{time.time_ns()}"
                    headers = github_headers(SECRET, PAYLOAD, "workflow_run", delivery=delivery)
                    event = http_api_event("POST", "/webhooks/github", headers, PAYLOAD)
                    event["pathParameters"] = {"provider": "github"}
                    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /webhooks/{provider}"
                    event_file.write_text(json.dumps(event))
                    used, elapsed, _ = _run(code, env)
                    if round_no:  # round 0 warms the OS file cache for every kind
                        cpu[name].append(used)
                        wall[name].append(elapsed)
            if args.profile:
                _profile(webhook_code, webhook_env)
        finally:
            event_file.unlink(missing_ok=True)
    finally:
        server.stop()

    python = sys.version.split()[0]
    print(f"\ncold start, fresh process to exit, median of {args.rounds} interleaved rounds (python {python})")
    ratios = {}
    for label, samples in (("CPU", cpu), ("wall", wall)):
        medians = {name: statistics.median(values) for name, values in samples.items()}
        floor = medians["floor (boto3 + SQS client)"]
        print(f"{label}:")
        for name, median in medians.items():
            spread = f"{min(samples[name]) * 1000:.0f}-{max(samples[name]) * 1000:.0f}"
            print(f"  {name:45s} {median * 1000:7.0f} ms  (range {spread} ms)  {median / floor:5.2f}x floor")
        webhook = medians["webhook (import + first request)"]
        ratios[label] = (
            webhook / floor,
            webhook / medians["botocore floor (SQS client, no boto3)"],
            webhook / medians["powertools (Logger+Tracer+Metrics handler)"],
        )
    for label, (to_floor, to_botocore, to_powertools) in ratios.items():
        verdict = f" (goal <= {GOAL}x: {'met' if to_floor <= GOAL else 'not met'})" if label == "CPU" else ""
        print(
            f"{label}: webhook / floor = {to_floor:.2f}x{verdict}; webhook / botocore floor = {to_botocore:.2f}x; "
            f"webhook / powertools handler = {to_powertools:.2f}x"
        )


if __name__ == "__main__":
    main()
