"""What 1,000 relayed runs cost on AWS, counted from real local executions, against a CI runner that
waits for the same runs itself.

Each mode (backoff, predictive) gets its own local runtime in simulated time, its routes file being
config/routes.yaml with `polling.mode` set. Signed GitHub `workflow_run` webhooks go through the
HTTP front (the API Gateway event), the webhook handler, SQS, the dispatcher and the real ASL, and
each job writes its results to the demo route's Test Management target and a commit status. The
demo plan's runs last 30 minutes, lognormal (sigma 0.1) with 5 % outliers (0.2x-3x); the sandbox adds
`--vendor-latency-ms` to every vendor call, as a vendor across the internet would. Warm-up jobs write
the plan's history first; then `--runs` jobs are measured:

- state transitions: counted in each execution's history (every state entered, Map iterations'
  states included, and every Task retry);
- Lambda: every invocation of every function, its handler's measured wall time billed at the memory
  template.yaml gives it (1 ms granularity); the INIT phase (billed since 1 August 2025) from the
  measured import time of each handler in a fresh interpreter, for the share of invocations that are
  cold (`--cold-share`; 0 = every environment warm, 1 = every invocation cold);
- SQS, DynamoDB, S3, Secrets Manager: every request the relay's boto3 clients send (DynamoDB in
  request units from each item's size); the SQS event source mapping is the local poller here, so
  its reads are counted as one ReceiveMessage and one DeleteMessageBatch per message (the most it
  costs when each batch holds one message);
- API Gateway (HTTP API): one request per webhook.

The CI-runner figure is a GitHub-hosted Linux 2-core runner that triggers the same run and polls it
every 30 s until it ends: per run, the run's duration plus the poll's lag, rounded up to whole
minutes as GitHub bills each job.

Prices: public list prices, region us-east-1, without free tiers, as published on 2026-12-01
(aws.amazon.com/step-functions|lambda|sqs|dynamodb|api-gateway|s3|secrets-manager/pricing;
docs.github.com "Actions runner pricing", rates from 1 January 2026). Not counted: CloudWatch
Logs ingestion, X-Ray traces (the template turns tracing on), the event source mapping's idle long
polls (a fixed few hundred thousand SQS requests a month whatever the traffic) and the Secrets
Manager reads of cold environments (cached five minutes in each).

Run: .venv/bin/python bench/cost.py [--runs 30] [--time-scale 0.005] [--vendor-latency-ms 80]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _simulated_runs import ROOT, TERMINAL, history, mean, transitions

from testrelay.aws import clients
from testrelay_local import runtime as runtime_module
from testrelay_local.cfn_template import load_template
from testrelay_local.runtime import TEMPLATE, LocalRuntime, reset_process_caches
from testrelay_local.sandbox import DEMO_PLAN_ID
from testrelay_local.signing import github_headers

REGION = "us-east-1"
PRICES_AS_OF = "2026-12-01"
STEP_FUNCTIONS_TRANSITION = 0.025 / 1000  # Standard workflows, per state transition
LAMBDA_REQUEST = 0.20 / 1_000_000
LAMBDA_GB_SECOND = 0.0000133334  # arm64 (template.yaml: Architectures [arm64]), first 7.5 billion GB-s
SQS_REQUEST = 0.40 / 1_000_000  # standard queue, per 64 KB request
DYNAMODB_WRITE_UNIT = 0.625 / 1_000_000  # on-demand, per write request unit (1 KB)
DYNAMODB_READ_UNIT = 0.125 / 1_000_000  # on-demand, per read request unit (4 KB strongly consistent)
HTTP_API_REQUEST = 1.00 / 1_000_000  # API Gateway HTTP API, first 300 million a month
S3_WRITE_REQUEST = 0.005 / 1000  # PUT, COPY, POST, LIST
S3_READ_REQUEST = 0.0004 / 1000  # GET and the rest
SECRETS_MANAGER_CALL = 0.05 / 10_000
GITHUB_LINUX_2_CORE_MINUTE = 0.006  # standard GitHub-hosted runner, from 2026-01-01
CI_POLL_SECONDS = 30

PAYLOAD = ROOT / "events" / "github" / "workflow_run.completed.payload.json"
_S3_WRITES = {"PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}
_S3_WRITES_PREFIX = ("List",)
_DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}


@dataclass
class Meters:
    """Lambda invocations and AWS requests seen while installed."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    invocations: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    dynamodb: list[tuple[str, str, tuple[str, str], bool, int | None]] = field(default_factory=list)
    """(operation, table, key, strongly consistent, size of the item sent when the call carries it)."""

    def reset(self) -> None:
        with self.lock:
            self.invocations.clear()
            self.requests.clear()
            self.dynamodb.clear()

    def wrap(self, function: str, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        def metered(event: Any, context: Any) -> Any:
            started = time.perf_counter()
            try:
                return handler(event, context)
            finally:
                with self.lock:
                    self.invocations[function].append(time.perf_counter() - started)

        return metered

    def on_call(self, model: Any, **_: Any) -> None:
        with self.lock:
            self.requests[(model.service_model.service_name, model.name)] += 1

    def on_dynamodb_params(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        item = params.get("Item")
        key = params.get("Key") or item or {}
        entry = (
            model.name,
            str(params.get("TableName", "")),
            (_plain(key.get("pk")), _plain(key.get("sk"))),
            bool(params.get("ConsistentRead")),
            _size(item) if item else None,
        )
        with self.lock:
            self.dynamodb.append(entry)


def _plain(value: Any) -> str:
    if isinstance(value, dict) and len(value) == 1:
        return str(next(iter(value.values())))
    return str(value)


def _size(item: Any) -> int:
    """An item's size, close to DynamoDB's (names and values as UTF-8, a few bytes of overhead)."""
    return len(json.dumps(item, default=str).encode())


@contextmanager
def metered_handlers(meters: Meters) -> Iterator[None]:
    """Every handler the local runtime wires (template functions, the webhook, the dispatcher) timed."""
    resources = load_template(TEMPLATE)["Resources"]
    by_code = {
        str(resource["Properties"]["CodeUri"]).rstrip("/"): logical
        for logical, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    real_load_handler = runtime_module.load_handler

    # template_handlers loads each function through this too.
    def load_handler(code_uri: str | Path, handler: str = "app.lambda_handler") -> Any:
        loaded = real_load_handler(code_uri, handler)
        return meters.wrap(by_code.get(str(code_uri).rstrip("/"), str(code_uri)), loaded)

    with mock.patch.object(runtime_module, "load_handler", load_handler):
        yield


def memory_mb() -> dict[str, int]:
    template = load_template(TEMPLATE)
    default = int(template["Globals"]["Function"].get("MemorySize", 128))
    return {
        logical: int(resource["Properties"].get("MemorySize", default))
        for logical, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def init_seconds() -> dict[str, float]:
    """Each handler's import time in a fresh interpreter: what a cold start runs before the handler."""
    probe = (
        "import sys, time; sys.path[:0] = [sys.argv[1], sys.argv[2]]; t = time.perf_counter(); "
        "import app; print(time.perf_counter() - t)"
    )
    seconds: dict[str, float] = {}
    for logical, resource in load_template(TEMPLATE)["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        code = str(ROOT / resource["Properties"]["CodeUri"])
        answer = subprocess.run(  # noqa: S603 - this interpreter, our own files
            [sys.executable, "-c", probe, code, str(ROOT / "layers" / "core")],
            capture_output=True,
            text=True,
            check=True,
            env={"AWS_DEFAULT_REGION": REGION, "POWERTOOLS_TRACE_DISABLED": "true", "PATH": ""},
        )
        seconds[logical] = float(answer.stdout.strip().splitlines()[-1])
    return seconds


@dataclass
class Phase:
    mode: str
    runs: int
    transitions: list[int]
    durations: list[float]
    invocations: dict[str, list[float]]
    requests: Counter[tuple[str, str]]
    dynamodb_write_units: float
    dynamodb_read_units: float
    webhooks: int


def _routes_file(directory: Path, mode: str) -> Path:
    routes = yaml.safe_load((ROOT / "config" / "routes.yaml").read_text())
    for route in routes["routes"]:
        route.setdefault("polling", {})["mode"] = mode
    path = directory / f"routes-{mode}.yaml"
    path.write_text(yaml.safe_dump(routes))
    return path


def _post_webhooks(runtime: LocalRuntime, count: int, spread_seconds: float) -> None:
    body = PAYLOAD.read_bytes()
    assert runtime.clock is not None
    gap = spread_seconds * runtime.clock.time_scale / max(1, count)
    for _ in range(count):
        headers = github_headers(runtime.webhook_secret, body, "workflow_run", str(uuid.uuid4()))
        answer = requests.post(runtime.webhook_url("github"), data=body, headers=headers, timeout=30)
        answer.raise_for_status()
        time.sleep(gap)


def _wait_for_executions(runtime: LocalRuntime, expected: int, timeout: float = 900) -> list[str]:
    sfn = runtime.aws.client("stepfunctions")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        executions = [
            e
            for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=runtime.outputs["StateMachineArn"]
            )
            for e in page["executions"]
        ]
        if len(executions) >= expected and all(e["status"] in TERMINAL for e in executions):
            return [e["executionArn"] for e in executions]
        time.sleep(1)
    raise TimeoutError(f"executions still running after {timeout:.0f}s")


def _dynamodb_units(runtime: LocalRuntime, meters: Meters) -> tuple[float, float]:
    """Write and read request units of the calls seen, from the size of each item they touched."""
    sizes: dict[tuple[str, str], int] = {}
    for table in {entry[1] for entry in meters.dynamodb}:
        scan: dict[str, Any] = {}
        while True:
            page = runtime.aws.resource("dynamodb").Table(table).scan(**scan)
            for item in page["Items"]:
                sizes[(str(item.get("pk")), str(item.get("sk")))] = _size(item)
            if "LastEvaluatedKey" not in page:
                break
            scan = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    writes = reads = 0.0
    for operation, _table, key, consistent, sent in meters.dynamodb:
        size = max(sent or 0, sizes.get(key, 0), 1)
        if operation in _DYNAMODB_WRITES:
            writes += math.ceil(size / 1024)
        elif operation == "GetItem":
            reads += math.ceil(size / 4096) * (1 if consistent else 0.5)
    return writes, reads


def run_phase(mode: str, args: argparse.Namespace, directory: Path) -> Phase:
    meters = Meters()
    distribution = {"median_seconds": 1800, "sigma": 0.1, "outlier_share": 0.05, "seed": args.seed}
    with (
        metered_handlers(meters),
        LocalRuntime(
            routes_file=_routes_file(directory, mode),
            time_scale=args.time_scale,
            simulated_time=True,
            sandbox_run_duration=1800,
        ) as runtime,
    ):
        assert runtime.sandbox is not None
        runtime.sandbox.set_run_durations({DEMO_PLAN_ID: distribution})
        runtime.sandbox.set_faults(latency_ms=args.vendor_latency_ms)
        reset_process_caches()  # the relay's clients are made again, from a session that counts
        relay_session = clients.session()
        relay_session.register("before-call", meters.on_call)
        relay_session.register("before-parameter-build.dynamodb", meters.on_dynamodb_params)
        _post_webhooks(runtime, args.warmup, spread_seconds=3600)
        _wait_for_executions(runtime, args.warmup)
        seen = set(_wait_for_executions(runtime, args.warmup))
        meters.reset()
        _post_webhooks(runtime, args.runs, spread_seconds=args.spread_hours * 3600)
        measured = [arn for arn in _wait_for_executions(runtime, args.warmup + args.runs) if arn not in seen]
        counted = [transitions(history(runtime, arn))[0] for arn in measured]
        runs = runtime.sandbox.state()["testsigma"]["runs"].values()
        durations = [float(run["duration_seconds"]) for run in runs][args.warmup :]
        writes, reads = _dynamodb_units(runtime, meters)
        return Phase(
            mode,
            len(measured),
            counted,
            durations,
            {name: list(times) for name, times in meters.invocations.items()},
            Counter(meters.requests),
            writes,
            reads,
            args.runs,
        )


def costs(phase: Phase, memory: dict[str, int], init: dict[str, float], cold_share: float) -> dict[str, float]:
    """Dollars per 1,000 runs, per component."""
    per_run = 1000 / phase.runs
    invocations = sum(len(times) for times in phase.invocations.values())
    gb_seconds = sum(
        memory[name] / 1024 * sum(math.ceil(t * 1000) / 1000 + cold_share * init.get(name, 0.0) for t in times)
        for name, times in phase.invocations.items()
    )
    requests_of = phase.requests
    sqs = sum(n for (service, _), n in requests_of.items() if service == "sqs") + 2 * phase.webhooks
    s3_writes = sum(
        n
        for (service, op), n in requests_of.items()
        if service == "s3" and (op in _S3_WRITES or op.startswith(_S3_WRITES_PREFIX))
    )
    s3_reads = sum(n for (service, _), n in requests_of.items() if service == "s3") - s3_writes
    secrets = sum(n for (service, _), n in requests_of.items() if service == "secretsmanager")
    return {
        "Step Functions": per_run * sum(phase.transitions) * STEP_FUNCTIONS_TRANSITION,
        "Lambda requests": per_run * invocations * LAMBDA_REQUEST,
        "Lambda GB-s": per_run * gb_seconds * LAMBDA_GB_SECOND,
        "SQS": per_run * sqs * SQS_REQUEST,
        "DynamoDB": per_run
        * (phase.dynamodb_write_units * DYNAMODB_WRITE_UNIT + phase.dynamodb_read_units * DYNAMODB_READ_UNIT),
        "API Gateway": per_run * phase.webhooks * HTTP_API_REQUEST,
        "S3": per_run * (s3_writes * S3_WRITE_REQUEST + s3_reads * S3_READ_REQUEST),
        "Secrets Manager": per_run * secrets * SECRETS_MANAGER_CALL,
    }


def ci_runner_cost(durations: list[float]) -> float:
    """Dollars per 1,000 runs for a CI job that polls the run every CI_POLL_SECONDS until it ends."""
    minutes = [math.ceil((d + CI_POLL_SECONDS / 2) / 60) for d in durations]
    return 1000 * mean(minutes) * GITHUB_LINUX_2_CORE_MINUTE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="measured jobs per mode")
    parser.add_argument("--warmup", type=int, default=10, help="jobs run first to write the plan's history")
    parser.add_argument("--time-scale", type=float, default=0.005)
    parser.add_argument("--spread-hours", type=float, default=2.0)
    parser.add_argument("--vendor-latency-ms", type=float, default=80.0)
    parser.add_argument("--cold-share", type=float, default=0.0, help="share of invocations billed an INIT phase")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    started = time.monotonic()
    memory, init = memory_mb(), init_seconds()
    with tempfile.TemporaryDirectory() as directory:
        phases = [run_phase(mode, args, Path(directory)) for mode in ("backoff", "predictive")]
    components = {phase.mode: costs(phase, memory, init, args.cold_share) for phase in phases}
    cold = {phase.mode: costs(phase, memory, init, 1.0) for phase in phases}
    names = list(next(iter(components.values())))
    print(
        f"dollars per 1,000 runs ({REGION} list prices of {PRICES_AS_OF}, no free tier); {args.runs} measured "
        f"runs per mode after {args.warmup} warm-up runs; 30-minute runs (lognormal sigma 0.1, 5 % outliers); "
        f"vendor latency {args.vendor_latency_ms:.0f} ms; cold share {args.cold_share}"
    )
    width = max(len(name) for name in [*names, "total (every invocation cold)"]) + 2
    print(f"{'component':<{width}}" + "".join(f"{phase.mode:>14}" for phase in phases))
    for name in names:
        print(f"{name:<{width}}" + "".join(f"{components[p.mode][name]:>14.4f}" for p in phases))
    print(f"{'total':<{width}}" + "".join(f"{sum(components[p.mode].values()):>14.4f}" for p in phases))
    print(
        f"{'total (every invocation cold)':<{width}}" + "".join(f"{sum(cold[p.mode].values()):>14.4f}" for p in phases)
    )
    print(f"{'CI runner polling instead':<{width}}" + "".join(f"{ci_runner_cost(p.durations):>14.2f}" for p in phases))
    for phase in phases:
        looks = len(phase.invocations.get("PollStatusFunction", [])) / phase.runs
        invocations = sum(len(t) for t in phase.invocations.values()) / phase.runs
        print(
            f"{phase.mode}: {mean(phase.transitions):.1f} transitions, {looks:.1f} looks, "
            f"{invocations:.1f} Lambda invocations, {phase.dynamodb_write_units / phase.runs:.1f} DynamoDB WRU and "
            f"{phase.dynamodb_read_units / phase.runs:.1f} RRU per run; Lambda ms per invocation "
            + ", ".join(
                f"{n.removesuffix('Function')} {1000 * mean(t):.0f}" for n, t in sorted(phase.invocations.items())
            )
        )
    print(
        "INIT (import) seconds: " + ", ".join(f"{n.removesuffix('Function')} {s:.2f}" for n, s in sorted(init.items()))
    )
    print(f"wall time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
