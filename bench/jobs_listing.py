"""`testrelay jobs` on a full ledger: the time index (a query per day, then one BatchGetItem) against the
scan it replaced, same ledger, same run.

The ledger is template.yaml's LedgerTable (its GSI included) in moto, filled with `--jobs` job items spread
over the 90 days of retention, each with two target items beside it, as the relay leaves them. What is
printed is what DynamoDB bills and what grows with the table: the items each way reads (a scan reads every
item of the table; a query reads the index entries it returns) and the calls it makes; the wall time is
moto's and is shown only beside them.

Run: .venv/bin/python bench/jobs_listing.py [--jobs 2000 20000] [--limit 20]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for part in ("layers/core", "cli", "local"):
    sys.path.insert(0, str(ROOT / part))
os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from testrelay.aws.ledger import job_day  # noqa: E402
from testrelay_cli.operations import list_jobs, scan_jobs  # noqa: E402
from testrelay_cli.stack_target import StackTarget  # noqa: E402
from testrelay_local.cfn_template import load_template  # noqa: E402

DAY = 86400


class Reads:
    """Items read and calls made through one client, counted from DynamoDB's own answers."""

    def __init__(self, client: Any) -> None:
        self.items = self.calls = 0
        client.meta.events.register("after-call.dynamodb.*", self._count)

    def _count(self, parsed: dict[str, Any], **_: Any) -> None:
        self.calls += 1
        self.items += int(parsed.get("ScannedCount", parsed.get("Count", 0)))
        self.items += sum(len(items) for items in (parsed.get("Responses") or {}).values())


def _ledger(jobs: int) -> str:
    properties = load_template(ROOT / "template.yaml")["Resources"]["LedgerTable"]["Properties"]
    table = boto3.resource("dynamodb").create_table(
        TableName="bench-ledger",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
    )
    now = int(time.time())
    with table.batch_writer() as batch:
        for n in range(jobs):
            created = now - (n * 89 * DAY) // jobs
            job_id = f"octo-checkout-{n:08d}"
            batch.put_item(
                Item={
                    "pk": f"JOB#{job_id}",
                    "sk": "JOB",
                    "job_id": job_id,
                    "route": "octo-checkout",
                    "state": "reported",
                    "summary": "4 passed, 1 failed",
                    "created_at": created,
                    "jobs_day": job_day(created),
                }
            )
            for target in ("patient-portal", "browserstack"):
                batch.put_item(Item={"pk": f"JOB#{job_id}", "sk": f"TARGET#{target}", "run_id": "TR-1"})
    return "bench-ledger"


def measure(jobs: int, limit: int) -> None:
    with mock_aws():
        table = _ledger(jobs)
        target = StackTarget(outputs={"LedgerTableName": table}, region="us-east-1")
        client = target.client("dynamodb")
        reads = Reads(client)
        rows = []
        for name, listing in (
            ("index", lambda: list_jobs(target, limit)),
            ("scan", lambda: scan_jobs(client, table, limit, None, None)),
        ):
            reads.items = reads.calls = 0
            started = time.perf_counter()
            listed = listing()
            rows.append((name, reads.items, reads.calls, time.perf_counter() - started, [j["job_id"] for j in listed]))
        (_, index_items, _, _, index_ids), (_, scan_items, _, _, scan_ids) = rows
        assert index_ids == scan_ids, "the index and the scan disagree on the newest jobs"
        print(f"ledger of {jobs:,} jobs ({3 * jobs:,} items), newest {limit}:")
        for name, items, calls, seconds, _ in rows:
            print(f"  {name:<6} {items:>8,} items read  {calls:>4} calls  {seconds * 1000:>8.1f} ms (moto)")
        print(f"  scan / index items read: {scan_items / max(index_items, 1):,.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()
    for jobs in args.jobs:
        measure(jobs, args.limit)


if __name__ == "__main__":
    main()
