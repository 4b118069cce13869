"""The operator CLI against a running local relay: what a person sees for failed targets, runs that do
not exist, unknown names, and repeats that start nothing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from testrelay_cli.cli import main
from testrelay_cli.operations import enqueue, list_jobs
from testrelay_cli.stack_target import StackTarget, write_local_state
from testrelay_local.runtime import LocalRuntime
from tests.support import demo_job, start_testsigma_run, wait_for_execution


@pytest.fixture
def relay(runtime: LocalRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StackTarget:
    """The runtime, found by the CLI as a running `testrelay local` is found."""
    state = tmp_path / "local.json"
    write_local_state(runtime.aws.endpoint_url, runtime.outputs, runtime.webhook_url("github"), path=state)
    monkeypatch.setenv("TESTRELAY_LOCAL_STATE", str(state))
    return StackTarget(outputs=runtime.outputs, endpoint_url=runtime.aws.endpoint_url, region="us-east-1")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_job_names_each_failed_targets_reason_and_exits_non_zero(
    runtime: LocalRuntime, relay: StackTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a job whose Test Management project does not exist
    job = demo_job(targets=[{**demo_job().route.targets[0].model_dump(), "project_id": "no-such-project"}])
    enqueue(relay, job)
    assert wait_for_execution(runtime, job.id)["error"] == "ResultsNotWritten"
    # Then `job` says why the target failed, and exits 1
    code, out, _ = cli(capsys, "job", job.id)
    assert code == 1
    [target] = [line for line in out.splitlines() if line.startswith("target")]
    assert target.startswith(
        "target    patient-portal: failed, 0 written, 0 unmatched, run -; reason: VendorRejected: "
    )
    assert "no-such-project" in target or "404" in target
    code, out, _ = cli(capsys, "job", job.id, "--json")
    document = json.loads(out)
    assert code == 1
    assert document["error"].startswith("results not written: patient-portal: VendorRejected: ")
    # And `jobs` has the reason on the job's row
    _, out, _ = cli(capsys, "jobs")
    [row] = [line for line in out.splitlines() if line.startswith(job.id)]
    assert "reason: results not written: patient-portal: VendorRejected: " in row
    _, out, _ = cli(capsys, "jobs", "--json")
    reasons = {j["job_id"]: j["reason"] for j in json.loads(out)}
    assert reasons[job.id].startswith("results not written: patient-portal: VendorRejected")


def test_resync_wait_of_a_run_that_does_not_exist_says_so(
    relay: StackTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "resync", "987654", "--route", "octo-checkout", "--wait")
    assert code == 1
    last = out.strip().splitlines()[-1]
    assert last.startswith("job octo-checkout-")
    assert " failed: VendorRejected: testsigma: " in last
    assert "HTTP 404" in last
    code, out, err = cli(capsys, "resync", "987653", "--route", "octo-checkout", "--wait", "--json")
    document = json.loads(out)  # progress went to stderr, the answer is one document
    assert code == 1
    assert "HTTP 404" in document["error"]
    assert document["status"] == "FAILED"
    assert "RecordFailure" in err


def test_a_repeated_resync_starts_nothing_and_says_so(
    runtime: LocalRuntime, relay: StackTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = str(start_testsigma_run(runtime)["id"])
    code, out, _ = cli(capsys, "resync", run_id, "--route", "octo-checkout", "--wait")
    assert code == 0
    assert out.strip().splitlines()[-1].endswith(" succeeded")
    # When the same run is re-synced without --again
    code, out, _ = cli(capsys, "resync", run_id, "--route", "octo-checkout")
    # Then nothing starts, it is no error, and the message says how to re-sync deliberately
    assert code == 0
    assert "already synced by job" in out
    assert "nothing started; --again re-syncs it" in out
    code, out, _ = cli(capsys, "resync", run_id, "--route", "octo-checkout", "--json")
    assert (code, json.loads(out)["started"], json.loads(out)["state"]) == (0, False, "reported")
    assert len([j for j in list_jobs(relay) if j["delivery_key"] == f"resync:{run_id}"]) == 1
    # And --again does start one
    _, out, _ = cli(capsys, "resync", run_id, "--route", "octo-checkout", "--again", "--json")
    assert json.loads(out)["started"] is True


def test_a_schedule_fired_again_for_the_same_time_says_nothing_started(
    runtime: LocalRuntime, relay: StackTarget, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(capsys, "schedule", "fire", "nightly-checkout", "--time", "2026-12-01T02:00:00Z", "--json")
    first = json.loads(out)
    assert (code, first["started"]) == (0, True)
    wait_for_execution(runtime, first["job_id"])
    time.sleep(0.01)
    code, out, _ = cli(capsys, "schedule", "fire", "nightly-checkout", "--time", "2026-12-01T02:00:00Z")
    assert code == 0
    assert out.strip() == (
        f"schedule nightly-checkout already fired for 2026-12-01T02:00Z (job {first['job_id']}, state reported): "
        "nothing started; --time names another time"
    )


def test_unknown_job_and_schedule_are_named(relay: StackTarget, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "job", "no-such-job")
    assert (code, out) == (2, "")
    assert err == "testrelay: no job 'no-such-job' in the local runtime: `testrelay jobs` lists the recent ones\n"
    code, out, _ = cli(capsys, "schedule", "fire", "no-such-schedule", "--json")
    assert code == 2
    assert json.loads(out) == {
        "error": "schedule 'no-such-schedule' did not fire: no schedule named 'no-such-schedule' in the routes file"
    }
