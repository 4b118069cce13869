"""Write-back at scale: 10,000 and 100,000 case results to BrowserStack Test Management.

For each size, a Testsigma plan of that many cases (named `[TC-n] ...`) and a BrowserStack project
holding the same cases are served by the vendor sandbox in a separate process (so its memory is not
counted); one signed GitHub delivery then goes through the whole local runtime: trigger, poll,
collection page by page to S3, write-back (id-token matching; results one per call, the documented
form, or 300 per call where the sandbox offers the undocumented multi-result call), report.
`--behaviour '{"bs_bulk_results": "present", "bs_max_cases_per_request": 100}'` picks the variants of
the undocumented points (the sandbox's `VendorBehaviour` knobs); the default is the documented
behaviour, where 10,000 results take 10,000 result calls (about 34 minutes at 294 requests/minute).

Prints, per size: BrowserStack API calls made against the minimum possible for the batch sizes,
the peak memory the write-back allocated (tracemalloc, the write-back task's invocations only),
requests per minute achieved against the vendor's 300, 429s received, and wall times.

Run: .venv/bin/python bench/write_back_scale.py [--sizes 10000 100000]
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
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from _generated_stack import RemoteSandbox, generated_seed

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = (ROOT / "events" / "github" / "workflow_run.completed.payload.json").read_bytes()
BATCH, CASES_PER_CALL, PAGE = 300, 1000, 300

ROUTES = f"""
version: 1
routes:
  - name: scale
    match: {{repositories: [octo-org/octo-repo], workflows: ["*"]}}
    testsigma: {{test_plan_id: 1}}
    polling: {{first_wait_seconds: 0, max_wait_seconds: 5, deadline_seconds: 3600}}
    targets:
      - kind: browserstack_tm
        name: scale-bs
        project_id: PR-1
        match_by: [id_token]
        batch_size: {BATCH}
        cases_per_call: {CASES_PER_CALL}
"""


class _WriteBackProbe:
    """Wraps the WriteBack handler: peak traced memory and the time span of its invocations."""

    def __init__(self, handler: Callable[[Any, Any], Any]) -> None:
        self.handler = handler
        self.peak = 0
        self.invocations = 0
        self.started: float | None = None
        self.ended = 0.0
        self._lock = threading.Lock()

    def __call__(self, event: Any, context: Any) -> Any:
        with self._lock:
            self.invocations += 1
            self.started = self.started or time.monotonic()
            baseline = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
        try:
            return self.handler(event, context)
        finally:
            with self._lock:
                self.peak = max(self.peak, tracemalloc.get_traced_memory()[1] - baseline)
                self.ended = time.monotonic()


def _minimum_calls(size: int, behaviour: dict[str, Any]) -> int:
    """Calls when the capabilities are known in advance (detection adds the probes: one multi-result
    attempt where it is missing, one refused update-test-cases per halving)."""
    catalog = math.ceil(size / PAGE)
    per_call = min(CASES_PER_CALL, int(behaviour.get("bs_max_cases_per_request", CASES_PER_CALL)))
    create, adds = 1, math.ceil(max(0, size - CASES_PER_CALL) / per_call)
    ready = 1
    bulk = behaviour.get("bs_bulk_results") == "present"
    results = math.ceil(size / BATCH) if bulk else size
    return catalog + create + adds + ready + results


def run(size: int, workdir: Path, behaviour: dict[str, Any] | None = None) -> dict[str, Any]:
    from testrelay_local.functions import load_handler
    from testrelay_local.runtime import LocalRuntime, Vendors
    from testrelay_local.sandbox import SandboxSeed
    from testrelay_local.signing import github_headers

    seed_file = workdir / f"seed-{size}.json"
    seed_file.write_text(json.dumps(generated_seed(size, "Scale", behaviour)))
    routes_file = workdir / "routes.yaml"
    routes_file.write_text(ROUTES)
    command = [sys.executable, "-m", "testrelay_local.sandbox", "--seed", str(seed_file), "--port", "0"]
    # Our own interpreter and module, with arguments this script built: nothing untrusted reaches it.
    server = subprocess.Popen(  # noqa: S603
        [*command, "--run-duration", "0", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().split(" at ")[-1].strip()
        # The runtime routes the WriteBack function to `lambda_handler` of its module: put the probe there.
        handler = load_handler("functions/write_back")
        original = handler.handler if isinstance(handler, _WriteBackProbe) else handler
        probe = _WriteBackProbe(original)
        sys.modules[original.__module__].lambda_handler = probe  # type: ignore[attr-defined]
        vendors = Vendors.sandbox(
            RemoteSandbox(base_url), SandboxSeed.model_validate(generated_seed(size, "Scale", behaviour))
        )  # type: ignore[arg-type]
        tracemalloc.start()
        began = time.monotonic()
        with LocalRuntime(routes_file=routes_file, vendors=vendors, time_scale=0.0) as runtime:
            headers = github_headers(runtime.webhook_secret, PAYLOAD, "workflow_run", str(uuid.uuid4()))
            answer = requests.post(runtime.webhook_url(), data=PAYLOAD, headers=headers, timeout=30)
            [job_id] = answer.json()["jobs"]
            sfn = runtime.aws.client("stepfunctions")
            while True:
                try:
                    status = sfn.describe_execution(executionArn=runtime.execution_arn(job_id))["status"]
                except sfn.exceptions.ExecutionDoesNotExist:
                    status = "NOT_STARTED"
                if status not in ("NOT_STARTED", "RUNNING"):
                    break
                time.sleep(0.5)
            wall = time.monotonic() - began
        tracemalloc.stop()
        state = requests.get(f"{base_url}/_sandbox/state", timeout=120).json()
    finally:
        server.terminate()
        server.wait(timeout=30)
    endpoints = state["requests"].get("browserstack_tm", {})
    calls = sum(e["calls"] for e in endpoints.values())
    throttled = sum(e["responses"].get("429", 0) for e in endpoints.values())
    [bs_run] = state["browserstack_tm"]["projects"]["PR-1"]["test_runs"].values()
    written = sum(len(case["results"]) for case in bs_run["test_cases"])
    duplicates = sum(1 for case in bs_run["test_cases"] if len(case["results"]) > 1)
    span = max(probe.ended - (probe.started or probe.ended), 1e-9)
    return {
        "size": size,
        "status": status,
        "written": written,
        "duplicates": duplicates,
        "calls": calls,
        "minimum": _minimum_calls(size, behaviour or {}),
        "by_endpoint": {name: e["calls"] for name, e in endpoints.items()},
        "peak_mb": probe.peak / 2**20,
        "invocations": probe.invocations,
        "rpm": calls / (span / 60),
        "throttled": throttled,
        "write_back_s": span,
        "wall_s": wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--behaviour", type=json.loads, default={}, help="sandbox knobs, as a JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            r = run(size, Path(tmp), args.behaviour)
            variant = args.behaviour or "documented behaviour"
            print(f"== {r['size']:,} results -> BrowserStack TM ({variant}): execution {r['status']}")
            print(f"   written: {r['written']:,} results, {r['duplicates']} case(s) with more than one")
            print(f"   API calls: {r['calls']:,} made, minimum possible {r['minimum']:,}")
            print(f"     by endpoint: {r['by_endpoint']}")
            print(f"   peak memory of the write-back: {r['peak_mb']:.1f} MiB over {r['invocations']} invocation(s)")
            print(f"   requests/minute: {r['rpm']:.0f} achieved, vendor limit 300; 429s received: {r['throttled']}")
            print(f"   wall time: write-back {r['write_back_s']:.1f} s, whole job {r['wall_s']:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
