"""What an operator reads through the CLI: `jobs` from the ledger's time index (paged, by time, old items
reindexed, an old stack scanned), `job` saying in one line why a job failed, `redrive` keeping what
each message carries."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from testrelay.aws.ledger import Ledger
from testrelay_cli.cli import main
from testrelay_cli.operations import list_jobs
from testrelay_cli.stack_target import StackTarget, write_local_state
from testrelay_local.runtime import LocalRuntime
from tests.support import demo_job, ledger, run_job

DAY = 86400


@pytest.fixture
def relay(runtime: LocalRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StackTarget:
    state = tmp_path / "local.json"
    write_local_state(runtime.aws.endpoint_url, runtime.outputs, runtime.webhook_url("github"), path=state)
    monkeypatch.setenv("TESTRELAY_LOCAL_STATE", str(state))
    return StackTarget(outputs=runtime.outputs, endpoint_url=runtime.aws.endpoint_url, region="us-east-1")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _old_job(runtime: LocalRuntime, created_at: int, indexed: bool = True) -> str:
    """A job item as the ledger kept it `created_at` ago (with its day key, or from before the index)."""
    job_id = f"octo-checkout-old-{uuid.uuid4().hex[:12]}"
    item: dict[str, Any] = {
        "pk": f"JOB#{job_id}",
        "sk": "JOB",
        "job_id": job_id,
        "route": "octo-checkout",
        "state": "reported",
        "summary": "1 passed",
        "created_at": created_at,
        "updated_at": created_at,
    }
    if indexed:
        item["jobs_day"] = time.strftime("%Y-%m-%d", time.gmtime(created_at))
    ledger(runtime).table.put_item(Item=item)
    return job_id


def _scanned(runtime: LocalRuntime) -> list[str]:
    """Every indexed job of the ledger, newest first: what the index must give, read the slow way."""
    items: list[dict[str, Any]] = []
    scan: dict[str, Any] = {}
    while True:
        page = ledger(runtime).table.scan(**scan)
        items += [i for i in page["Items"] if i["sk"] == "JOB" and "jobs_day" in i]
        if "LastEvaluatedKey" not in page:
            break
        scan = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    return [str(i["job_id"]) for i in sorted(items, key=lambda i: int(i["created_at"]), reverse=True)]


def test_jobs_pages_through_the_time_index_newest_first(
    runtime: LocalRuntime, relay: StackTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a job recorded now by the relay, and jobs of earlier days (two on one day, one 80 days back)
    now = int(time.time())
    fresh = demo_job(delivery=str(uuid.uuid4()))
    assert run_job(runtime, fresh)["status"] == "SUCCEEDED"
    for ago in (DAY + 10, DAY + 20, 3 * DAY, 80 * DAY):
        _old_job(runtime, now - ago)
    expected = _scanned(runtime)
    assert expected[0] == fresh.id
    # When `jobs` is paged two at a time, each page continuing from the last job shown
    pages: list[list[str]] = []
    argv = ["jobs", "--limit", "2", "--json"]
    while True:
        code, out, _ = cli(capsys, *argv)
        assert code == 0
        page = [j["job_id"] for j in json.loads(out)]
        if not page:
            break
        pages.append(page)
        argv = ["jobs", "--limit", "2", "--json", "--before", page[-1]]
    # Then the pages hold every job once, newest first, as a scan of the whole table would order them
    assert [job_id for page in pages for job_id in page] == expected
    assert all(len(page) <= 2 for page in pages)
    # And the text says how to see the older ones
    _, out, _ = cli(capsys, "jobs", "--limit", "1")
    assert out.strip().splitlines()[-1] == f"older: testrelay jobs --before {fresh.id}"
    # And --since leaves out what is older
    code, out, _ = cli(capsys, "jobs", "--since", "2d", "--limit", "100", "--json")
    listed = [j["job_id"] for j in json.loads(out)]
    created = {j: int((ledger(runtime).get_job(j) or {})["created_at"]) for j in expected}
    assert listed == [j for j in expected if created[j] >= now - 2 * DAY]
    assert fresh.id in listed
    assert len(listed) < len(expected)


def test_jobs_recorded_before_the_index_are_listed_once_reindexed(
    runtime: LocalRuntime, relay: StackTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a job item written before the ledger had its time index (no day key)
    unindexed = _old_job(runtime, int(time.time()) - 5 * DAY, indexed=False)
    assert unindexed not in [j["job_id"] for j in list_jobs(relay, 1000)]
    # When the operator reindexes once after the upgrade
    code, out, _ = cli(capsys, "jobs", "--reindex", "--json")
    # Then the job gets its key and `jobs` lists it; reindexing again changes nothing
    assert code == 0
    assert json.loads(out)["indexed"] >= 1
    assert unindexed in [j["job_id"] for j in list_jobs(relay, 1000)]
    _, out, _ = cli(capsys, "jobs", "--reindex", "--json")
    assert json.loads(out)["indexed"] == 0


def test_a_ledger_without_the_index_is_scanned_and_says_so(runtime: LocalRuntime) -> None:
    # Given a stack deployed before the index: its ledger table has none
    dynamodb = runtime.aws.client("dynamodb")
    name = f"old-ledger-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    old = Ledger(name, runtime.aws.resource("dynamodb"))
    jobs = [demo_job(delivery=str(uuid.uuid4())) for _ in range(3)]
    for job in jobs:
        old.record_job(job)
    target = StackTarget(outputs={"LedgerTableName": name}, endpoint_url=runtime.aws.endpoint_url, region="us-east-1")
    notes: list[str] = []
    # When `jobs` asks it
    listed = list_jobs(target, 2, note=notes.append)
    # Then the jobs come from a scan, and the operator is told why
    assert len(listed) == 2
    assert {j["job_id"] for j in listed} <= {job.id for job in jobs}
    assert notes == [
        "the local runtime's ledger has no JobsByDay index yet (deploy the current template): scanned the table"
    ]


def test_job_says_in_one_line_where_a_job_failed_and_what_to_do(
    runtime: LocalRuntime, relay: StackTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a job whose Testsigma plan does not exist, so its TriggerPlan step fails
    job = demo_job(delivery=str(uuid.uuid4()), testsigma={"test_plan_id": 999999})
    assert run_job(runtime, job)["status"] == "FAILED"
    error = str((ledger(runtime).get_job(job.id) or {})["error"])
    # When the operator asks for the job
    code, out, _ = cli(capsys, "job", job.id)
    # Then the first line says where it failed, why, and what to do; and the command exits 1
    assert code == 1
    headline = out.splitlines()[0]
    assert headline == (
        f"{job.id} failed at TriggerPlan: {' '.join(error.split())}; "
        f"fix the cause, then `testrelay retry {job.id}` (resumes from its checkpoints)"
    )
    assert error.startswith("VendorRejected: ")
    assert "stackTrace" not in out
    # And --json says the same: the headline, its parts, the error; the kept job is structure, not a string
    code, out, _ = cli(capsys, "job", job.id, "--json")
    document = json.loads(out)
    assert code == 1
    assert document["failure"]["summary"] == headline
    assert (document["failure"]["state"], document["failure"]["step"]) == ("failed", "TriggerPlan")
    assert document["failure"]["next"].endswith(f"`testrelay retry {job.id}` (resumes from its checkpoints)")
    assert document["error"] == error
    assert document["job"]["id"] == job.id


def test_job_of_a_succeeded_job_has_no_failure(
    runtime: LocalRuntime, relay: StackTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    job = demo_job(delivery=str(uuid.uuid4()))
    assert run_job(runtime, job)["status"] == "SUCCEEDED"
    code, out, _ = cli(capsys, "job", job.id, "--json")
    assert code == 0
    assert "failure" not in json.loads(out)
    code, out, _ = cli(capsys, "job", job.id)
    assert out.splitlines()[0].startswith(f"job       {job.id} ")


def _parked(runtime: LocalRuntime, timeout: float = 30) -> list[dict[str, Any]]:
    sqs = runtime.aws.client("sqs")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = sqs.receive_message(
            QueueUrl=runtime.outputs["JobsDlqUrl"],
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=0,
        )
        if answer.get("Messages"):
            return list(answer["Messages"])
        time.sleep(0.2)
    return []


def test_redrive_keeps_each_messages_attributes_and_says_how_it_moved(
    runtime: LocalRuntime, relay: StackTarget, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # Given a message no dispatcher can process, carrying an attribute of its sender's
    sqs = runtime.aws.client("sqs")
    poison = json.dumps({"id": f"poison-{uuid.uuid4().hex[:8]}", "schema_version": 9})
    sqs.send_message(
        QueueUrl=runtime.outputs["JobsQueueUrl"],
        MessageBody=poison,
        MessageAttributes={"origin": {"DataType": "String", "StringValue": "nightly-import"}},
    )
    [first] = _parked(runtime)
    # When a dry run lists the DLQ
    code, out, _ = cli(capsys, "redrive", "--dry-run", "--json")
    # Then it lists the message with its reason and leaves it there
    listed = json.loads(out)
    assert code == 0
    assert (listed["in_dlq"], listed["method"], listed["moved"]) == (1, "", 0)
    assert listed["messages"][0]["reason"].startswith("not a job or retry request: ")
    # When it is redriven for real (the local runtime's moto has no message move task)
    code, out, _ = cli(capsys, "redrive", "--json")
    done = json.loads(out)
    assert code == 0
    assert (done["method"], done["moved"]) == ("receive and re-send", 1)
    # And the local runtime's log shows no error for the move-task question moto cannot answer
    assert "Error on request" not in caplog.text
    # Then the message reached the dispatcher again with its attributes, which parked it once more
    [again] = _parked(runtime)
    assert again["MessageId"] != first["MessageId"]
    assert again["Body"] == poison
    assert again["MessageAttributes"]["origin"]["StringValue"] == "nightly-import"
    assert again["MessageAttributes"]["failure_reason"]["StringValue"].startswith("not a job or retry request: ")
    # And the text answer names the way it moved
    code, out, _ = cli(capsys, "redrive")
    assert out.strip().splitlines()[-1] == (
        "moved 1 message(s) to the jobs queue by receiving and re-sending each (this endpoint has no message "
        "move task; bodies, message attributes and trace header kept)"
    )
    # Clean up: the parked message would otherwise stay for the module's other tests
    for message in _parked(runtime):
        sqs.delete_message(QueueUrl=runtime.outputs["JobsDlqUrl"], ReceiptHandle=message["ReceiptHandle"])
