"""Write-back at scale: 10,000 and 100,000 case results to BrowserStack and Testsigma Test Management.

For each size and vendor, a Testsigma plan of that many cases (named `[TC-n] ...`) and a project holding
the same cases are served by the vendor sandbox in a separate process (so its memory and CPU are not the
relay's); one signed GitHub delivery then goes through the whole local runtime: trigger, poll, collection
page by page to S3, write-back through the real state machine (its Map, time slices of
WRITE_BACK_SLICE_SECONDS looping back to the same target), report.

BrowserStack: results one per call (the documented form) or, with `--behaviour '{"bs_bulk_results":
"present"}'`, 300 per call through the undocumented multi-result call the writer detects. Testsigma TM:
status updates in batches of `--tm-batch` cases per call.

The sandbox throttles by itself as the vendors document it (BrowserStack: 300 per 60 s, 429 and a
one-window lockout; Testsigma TM: 10 per second, HTTP 500 "rate limit exceeded"). `--time-scale N`
shrinks BrowserStack's window to 60/N s in the sandbox and in the relay's settings alike, and the
write-back's time slice to 600/N s (rates are printed per real minute), so one-per-call results stay
within a bounded wall time and span as many slices as at real scale.

What is measured is what the vendor received: the sandbox's arrivals per clock-aligned window of the
account, from the write-back's first call to its last (the sustained rate is the mean over the full
windows, printed against the limit), its throttle answers, and each case's rows (duplicates); plus
the state machine's history events (against the 25,000 limit), the write-back's invocations (slices)
and, with `--memory`, its peak traced memory (in a run of its own: the tracer slows the write-back's own
work, the plan built between the case list and the run's creation, some 3.5 times). `--timeline` prints
the calls accepted per window and when each endpoint's calls ran; `--throttle JSON` sets the sandbox's
throttle knobs of the vendor (e.g. `{"counting": "sliding"}`).

Run: .venv/bin/python bench/write_back_scale.py [--sizes 10000 100000] [--vendors browserstack_tm testsigma_tm]
     [--time-scale 1] [--in-flight 4] [--behaviour JSON] [--throttle JSON] [--timeline] [--memory]
"""

from __future__ import annotations

import argparse
import json
import math
import os
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
LIMITS = {"browserstack_tm": (300, 60.0), "testsigma_tm": (10, 1.0)}
"""Each vendor's documented limit: calls per window of seconds."""
HISTORY_LIMIT = 25_000


def _tm_statuses() -> str:
    from testrelay_local.sandbox import DEMO_TM_STATUSES

    names = {"passed": "Passed", "failed": "Failed", "blocked": "Blocked", "skipped": "Skipped", "untested": "Untested"}
    return "{" + ", ".join(f"{status}: {DEMO_TM_STATUSES[name]}" for status, name in names.items()) + "}"


def _routes(vendor: str, tm_batch: int) -> str:
    head = """
version: 1
routes:
  - name: scale
    match: {repositories: [octo-org/octo-repo], workflows: ["*"]}
    testsigma: {test_plan_id: 1}
    polling: {first_wait_seconds: 0, max_wait_seconds: 5, deadline_seconds: 9000}
    targets:
"""
    if vendor == "browserstack_tm":
        return (
            head
            + f"""      - kind: browserstack_tm
        name: scale-bs
        project_id: PR-1
        match_by: [id_token]
        batch_size: {BATCH}
        cases_per_call: {CASES_PER_CALL}
        bulk_results: true
"""
        )
    return (
        head
        + f"""      - kind: testsigma_tm
        name: scale-tm
        project_id: TM-1
        match_by: [id_token]
        batch_size: {tm_batch}
        status_ids: {_tm_statuses()}
"""
    )


def _sustained(per_window: list[list[int]]) -> tuple[float, int]:
    """Mean accepted calls per window over the full windows (the first and last are partial), and the peak."""
    if not per_window:
        return 0.0, 0
    by_index = dict((index, count) for index, count in per_window)
    first, last = per_window[0][0], per_window[-1][0]
    full = [by_index.get(index, 0) for index in range(first + 1, last)]
    return (sum(full) / len(full) if full else float(per_window[0][1])), max(by_index.values())


def _target_failures(runtime: Any, job_id: str) -> list[str]:
    """Each unwritten target's error and cause, as the job's record keeps them."""
    from testrelay.aws.ledger import Ledger

    record = Ledger(runtime.outputs["LedgerTableName"]).get_job(job_id) or {}
    return [
        f"{t['target']}: {t.get('error')}: {str(t.get('cause'))[:300]}"
        for t in record.get("targets", [])
        if t.get("status") != "written"
    ]


def _history_events(sfn: Any, arn: str) -> int:
    events, token = 0, None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        events += len(page["events"])
        token = page.get("nextToken")
        if not token:
            return events


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


def _minimum_calls(size: int, behaviour: dict[str, Any], vendor: str, tm_batch: int) -> int:
    """Calls when the capabilities are known in advance (detection adds the probes: one multi-result
    attempt where it is missing, one refused update-test-cases per halving)."""
    if vendor == "testsigma_tm":
        # the case list (pages of 100), the run's creation, the status updates
        return math.ceil(size / 100) + 1 + math.ceil(size / tm_batch)
    catalog = math.ceil(size / PAGE)
    per_call = min(CASES_PER_CALL, int(behaviour.get("bs_max_cases_per_request", CASES_PER_CALL)))
    create, adds = 1, math.ceil(max(0, size - CASES_PER_CALL) / per_call)
    ready = 1
    bulk = behaviour.get("bs_bulk_results") == "present"
    results = math.ceil(size / BATCH) if bulk else size
    return catalog + create + adds + ready + results


def run(
    size: int,
    workdir: Path,
    vendor: str,
    scale: float,
    in_flight: int,
    tm_batch: int,
    behaviour: dict[str, Any],
    throttle_knobs: dict[str, Any],
    trace_memory: bool,
) -> dict[str, Any]:
    from testrelay_local.functions import load_handler
    from testrelay_local.runtime import LocalRuntime, Vendors
    from testrelay_local.sandbox import SandboxSeed
    from testrelay_local.signing import github_headers

    seed_file = workdir / f"seed-{size}.json"
    seed = generated_seed(size, "Scale", behaviour, tm_project="TM-1" if vendor == "testsigma_tm" else None)
    seed_file.write_text(json.dumps(seed))
    routes_file = workdir / "routes.yaml"
    routes_file.write_text(_routes(vendor, tm_batch))
    limit, window = LIMITS[vendor]
    window = window / scale if vendor == "browserstack_tm" else window
    settings = {"WRITE_BACK_IN_FLIGHT": str(in_flight)}
    if vendor == "browserstack_tm":
        # The time slices scaled alike, so a write-back spans as many invocations as at real scale.
        settings.update(
            BROWSERSTACK_TM_RATE_PERIOD_SECONDS=str(window),
            BROWSERSTACK_TM_THROTTLE_WAIT_SECONDS=str(window),
            WRITE_BACK_SLICE_SECONDS=str(600 / scale),
        )
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    # The sandbox with its project case listings memoised (see _memo_sandbox), in a process of its own.
    command = [sys.executable, str(ROOT / "bench" / "_memo_sandbox.py"), "--seed", str(seed_file), "--port", "0"]
    # Our own interpreter and module, with arguments this script built: nothing untrusted reaches it.
    server = subprocess.Popen(  # noqa: S603
        [*command, "--run-duration", "0", "--quiet"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().split(" at ")[-1].strip()
        knobs: dict[str, Any] = {"window_seconds": window}
        if vendor == "browserstack_tm":
            knobs["lockout_seconds"] = window
        knobs.update(throttle_knobs)
        requests.post(f"{base_url}/_sandbox/throttle", json={"vendors": {vendor: knobs}}, timeout=30)
        # The runtime routes the WriteBack function to `lambda_handler` of its module: put the probe there.
        handler = load_handler("functions/write_back")
        original = handler.handler if isinstance(handler, _WriteBackProbe) else handler
        probe = _WriteBackProbe(original)
        sys.modules[original.__module__].lambda_handler = probe  # type: ignore[attr-defined]
        vendors = Vendors.sandbox(RemoteSandbox(base_url), SandboxSeed.model_validate(seed))  # type: ignore[arg-type]
        if trace_memory:
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
            events = _history_events(sfn, runtime.execution_arn(job_id))
            failures = _target_failures(runtime, job_id)
        if trace_memory:
            tracemalloc.stop()
        state = requests.get(f"{base_url}/_sandbox/state", timeout=120).json()
        throttle = requests.get(f"{base_url}/_sandbox/throttle", timeout=60).json()[vendor]
    finally:
        server.terminate()
        server.wait(timeout=30)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    endpoints = state["requests"].get(vendor, {})
    calls = sum(e["calls"] for e in endpoints.values())
    [account] = throttle["accounts"].values()
    sustained, peak = _sustained(account["per_window"])
    if vendor == "browserstack_tm":
        [bs_run] = state["browserstack_tm"]["projects"]["PR-1"]["test_runs"].values()
        rows = [len(case["results"]) for case in bs_run["test_cases"]]
    else:
        [tm_run] = state["testsigma_tm"]["projects"]["TM-1"]["test_runs"].values()
        rows = [int(case.get("update_count", 0)) for case in tm_run["test_run_cases"]]
    span = max(probe.ended - (probe.started or probe.ended), 1e-9)
    return {
        "vendor": vendor,
        "limit": limit,
        "window": window,
        "sustained": sustained,
        "peak": peak,
        "per_window": account["per_window"],
        "events": events,
        "failures": failures,
        "size": size,
        "status": status,
        "written": sum(1 for count in rows if count),
        "duplicates": sum(1 for count in rows if count > 1),
        "calls": calls,
        "minimum": _minimum_calls(size, behaviour, vendor, tm_batch),
        "by_endpoint": {name: e["calls"] for name, e in endpoints.items()},
        "phases": state["request_times"].get(vendor, {}),
        "peak_mb": probe.peak / 2**20,
        "invocations": probe.invocations,
        "throttled": account["throttled"],
        "write_back_s": span,
        "wall_s": wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--vendors", nargs="+", default=list(LIMITS), choices=list(LIMITS))
    parser.add_argument("--time-scale", type=float, default=1.0, help="BrowserStack's 60 s window becomes 60/N s")
    parser.add_argument("--in-flight", type=int, default=4, help="WRITE_BACK_IN_FLIGHT")
    parser.add_argument("--tm-batch", type=int, default=100, help="Testsigma TM cases per status update call")
    parser.add_argument("--behaviour", type=json.loads, default={}, help="sandbox knobs, as a JSON object")
    parser.add_argument("--throttle", type=json.loads, default={}, help="sandbox throttle knobs of the vendor (JSON)")
    parser.add_argument("--timeline", action="store_true", help="print the calls the vendor accepted per window")
    parser.add_argument(
        "--memory",
        action="store_true",
        help="trace the write-back's peak memory (tracemalloc slows its own work some 3.5 times: rates are then lower)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for vendor in args.vendors:
            for size in args.sizes:
                r = run(
                    size,
                    Path(tmp),
                    vendor,
                    args.time_scale,
                    args.in_flight,
                    args.tm_batch,
                    args.behaviour,
                    args.throttle,
                    args.memory,
                )
                variant = {**args.behaviour, **args.throttle} or "documented behaviour"
                real = 60 / r["window"]  # windows per real minute at the vendor's own scale
                scale = args.time_scale if vendor == "browserstack_tm" else 1.0
                per_minute, limit_per_minute = r["sustained"] * real / scale, r["limit"] * real / scale
                print(f"== {r['size']:,} results -> {vendor} ({variant}), {args.in_flight} in flight: {r['status']}")
                print(f"   written: {r['written']:,} cases, {r['duplicates']} with more than one row")
                for failure in r["failures"]:
                    print(f"   not written: {failure}")
                print(f"   API calls: {r['calls']:,} made, minimum possible {r['minimum']:,}; by endpoint:")
                print(f"     {r['by_endpoint']}")
                print(
                    f"   sustained: {r['sustained']:.1f} calls per {r['window']:g} s window of {r['limit']} "
                    f"({100 * r['sustained'] / r['limit']:.1f} % of the limit; {per_minute:.0f}/min at real scale "
                    f"against {limit_per_minute:.0f}); peak window {r['peak']}; throttled: {r['throttled']}"
                )
                print(f"   history events: {r['events']:,} of {HISTORY_LIMIT:,}; invocations: {r['invocations']}")
                if args.memory:
                    print(f"   peak memory of the write-back: {r['peak_mb']:.1f} MiB")
                print(f"   wall time: write-back {r['write_back_s']:.1f} s, whole job {r['wall_s']:.1f} s", flush=True)
                if args.timeline:
                    start = min(first for first, _ in r["phases"].values())
                    for name, (first, last) in r["phases"].items():
                        print(f"   {name}: {first - start:.1f}-{last - start:.1f} s")
                    counts = dict(r["per_window"])
                    span = range(min(counts), max(counts) + 1) if counts else range(0)
                    print("   accepted per window:", " ".join(str(counts.get(i, 0)) for i in span), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
