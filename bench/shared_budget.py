"""One rate budget for every concurrent job: 2 and 4 concurrent 100,000-result BrowserStack jobs.

Each job goes through the whole local runtime (trigger, poll, collection to S3, write-back through
the state machine's Map) against the vendor sandbox in a separate process, which throttles by
itself per account as BrowserStack documents it: over the limit a 429 **without** Retry-After and a
lockout of one window. The WriteBack function runs in as many separate worker processes as there
are jobs (`LocalRuntime(containers=...)`), like concurrent Lambda execution environments: they share
nothing but DynamoDB (moto) and the vendor.

Each job count is run twice in the same run:
- `process`: RATE_BUDGET=process, the old per-process limiter (each container paces itself at the limit);
- `shared`: RATE_BUDGET=shared, the account's budget item in the ledger table.

Time is scaled so the bench takes minutes: BrowserStack's 300 requests per 60 s become 300 per
`--window` seconds (default 30, time x2) in the sandbox, and the relay is given the same scaled limit through
its settings (BROWSERSTACK_TM_RATE_PERIOD_SECONDS, BROWSERSTACK_TM_THROTTLE_WAIT_SECONDS). Rates are
printed per window, which at real scale is per minute. What is measured is what the sandbox
received (arrivals per clock-aligned window, per account), i.e. the relay's pacing, not moto's.

Run: .venv/bin/python bench/shared_budget.py [--jobs 2 4] [--results 100000] [--window 30]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from _generated_stack import RemoteSandbox, generated_seed

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD = (ROOT / "events" / "github" / "workflow_run.completed.payload.json").read_bytes()
LIMIT = 300
ROUTES = """
version: 1
routes:
  - name: budget
    match: {repositories: [octo-org/octo-repo], workflows: ["*"]}
    testsigma: {test_plan_id: 1}
    polling: {first_wait_seconds: 0, max_wait_seconds: 5, deadline_seconds: 7200}
    targets:
      - kind: browserstack_tm
        name: budget-bs
        project_id: PR-1
        match_by: [id_token]
        batch_size: 300
        cases_per_call: 1000
"""


def _sustained(per_window: list[list[int]]) -> tuple[float, int]:
    """Mean accepted calls per window over the full windows (the first and last are partial), and the peak."""
    counts = [count for _, count in per_window]
    if not counts:
        return 0.0, 0
    first, last = per_window[0][0], per_window[-1][0]
    by_index = dict((index, count) for index, count in per_window)
    full = [by_index.get(index, 0) for index in range(first + 1, last)]
    return (sum(full) / len(full) if full else float(counts[0])), max(counts)


def run(mode: str, jobs: int, size: int, window: float, seed_file: Path, workdir: Path) -> dict[str, Any]:
    from testrelay_local.runtime import LocalRuntime, Vendors
    from testrelay_local.sandbox import SandboxSeed
    from testrelay_local.signing import github_headers

    routes_file = workdir / "routes.yaml"
    routes_file.write_text(ROUTES)
    # The sandbox with its project case listing memoised (see _memo_sandbox), in a process of its own.
    command = [sys.executable, str(ROOT / "bench" / "_memo_sandbox.py"), "--seed", str(seed_file), "--port", "0"]
    # Our own interpreter and module, with arguments this script built: nothing untrusted reaches it.
    server = subprocess.Popen([*command, "--run-duration", "0", "--quiet"], stdout=subprocess.PIPE, text=True)  # noqa: S603
    settings = {
        "RATE_BUDGET": mode,
        "BROWSERSTACK_TM_RATE_LIMIT": str(LIMIT),
        "BROWSERSTACK_TM_RATE_PERIOD_SECONDS": str(window),
        "BROWSERSTACK_TM_THROTTLE_WAIT_SECONDS": str(window),
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().split(" at ")[-1].strip()
        knobs = {"limit": LIMIT, "window_seconds": window, "lockout_seconds": window, "retry_after": "none"}
        requests.post(f"{base_url}/_sandbox/throttle", json={"vendors": {"browserstack_tm": knobs}}, timeout=30)
        # Results in bulk (300 per call): the undocumented multi-result call, detected by the writer. With
        # the documented one-result call, 100,000 results are 100,000 calls (5.5 hours at 300 per minute).
        requests.post(f"{base_url}/_sandbox/config", json={"bs_bulk_results": "present"}, timeout=30)
        seed = SandboxSeed.model_validate_json(seed_file.read_text())
        vendors = Vendors.sandbox(RemoteSandbox(base_url), seed)  # type: ignore[arg-type]
        began = time.monotonic()
        runtime = LocalRuntime(
            routes_file=routes_file, vendors=vendors, time_scale=0.0, containers={"WriteBackFunction": jobs}
        )
        with runtime:
            ids = []
            for _ in range(jobs):
                headers = github_headers(runtime.webhook_secret, PAYLOAD, "workflow_run", str(uuid.uuid4()))
                answer = requests.post(runtime.webhook_url(), data=PAYLOAD, headers=headers, timeout=30)
                ids.extend(answer.json()["jobs"])
            sfn = runtime.aws.client("stepfunctions")
            statuses: dict[str, str] = {}
            while len(statuses) < len(ids):
                for job_id in ids:
                    if job_id in statuses:
                        continue
                    try:
                        status = sfn.describe_execution(executionArn=runtime.execution_arn(job_id))["status"]
                    except sfn.exceptions.ExecutionDoesNotExist:
                        status = "NOT_STARTED"
                    if status not in ("NOT_STARTED", "RUNNING"):
                        statuses[job_id] = status
                time.sleep(0.5)
            wall = time.monotonic() - began
            table = runtime.outputs["LedgerTableName"]
            dynamodb = runtime.aws.client("dynamodb")
            written = 0
            for job_id in ids:
                item = dynamodb.get_item(
                    TableName=table, Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "TARGET#budget-bs"}}
                ).get("Item", {})
                written += int(item.get("written", {}).get("N", 0))
            budget_items = [
                item
                for item in dynamodb.scan(TableName=table)["Items"]
                if item["pk"]["S"].startswith("BUDGET#browserstack-tm#")
            ]
        throttle = requests.get(f"{base_url}/_sandbox/throttle", timeout=60).json()["browserstack_tm"]
    finally:
        server.terminate()
        server.wait(timeout=60)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    [account] = throttle["accounts"].values()
    sustained, peak = _sustained(account["per_window"])
    leases = sum(int(item.get("leases", {}).get("N", 0)) for item in budget_items)
    return {
        "mode": mode,
        "jobs": jobs,
        "succeeded": sum(1 for s in statuses.values() if s == "SUCCEEDED"),
        "written": written,
        "expected": jobs * size,
        "calls": account["accepted"],
        "throttled": account["throttled"],
        "sustained": sustained,
        "peak": peak,
        "leases": leases,
        "wall_s": wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--results", type=int, default=100_000, help="case results per job")
    parser.add_argument("--window", type=float, default=30.0, help="seconds standing for BrowserStack's 60")
    parser.add_argument("--modes", nargs="+", default=["process", "shared"], choices=["process", "shared"])
    args = parser.parse_args()
    print(
        f"{args.results:,} results per job; BrowserStack limit {LIMIT} per {args.window:g} s "
        f"(time x{60 / args.window:g}: per window = per minute at real scale); sandbox: 429 without "
        "Retry-After, lockout of one window, counted per account"
    )
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        seed_file = workdir / "seed.json"
        seed_file.write_text(json.dumps(generated_seed(args.results, "Budget")))
        for jobs in args.jobs:
            for mode in args.modes:
                row = run(mode, jobs, args.results, args.window, seed_file, workdir)
                rows.append(row)
                print(f"  done: {jobs} jobs, {mode}: {row['wall_s']:.0f} s", flush=True)
    header = (
        f"{'jobs':>4}  {'budget':<8} {'ok':>5} {'written':>9} {'calls':>6} {'429s':>5} "
        f"{'req/window':>10} {'% limit':>7} {'peak':>5} {'ddb leases':>10} {'wall s':>7}"
    )
    print()
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['jobs']:>4}  {row['mode']:<8} {row['succeeded']:>2}/{row['jobs']:<2} "
            f"{row['written']:>9,} {row['calls']:>6} {row['throttled']:>5} {row['sustained']:>10.1f} "
            f"{100 * row['sustained'] / LIMIT:>6.1f}% {row['peak']:>5} {row['leases']:>10} {row['wall_s']:>7.0f}"
        )
    by = {(row["jobs"], row["mode"]): row for row in rows}
    for jobs in args.jobs:
        shared, process = by.get((jobs, "shared")), by.get((jobs, "process"))
        if shared and process and process["sustained"]:
            ratio = shared["sustained"] / process["sustained"]
            print(
                f"{jobs} jobs: shared/per-process sustained rate x{ratio:.2f}, "
                f"wall x{shared['wall_s'] / process['wall_s']:.2f}; "
                f"429s {process['throttled']} -> {shared['throttled']}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
