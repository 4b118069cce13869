"""The fastest reliability figures (bench/reliability.py) at small size, plus the pieces they rest on:
a trigger that dies before its ledger write is found again instead of repeated, under every variant
of the run listing the Testsigma document does not give; botocore's DEBUG bodies stay out of the logs;
a killed write-back worker resumes through the state machine's retry (R3); a job whose start keeps
failing rests in the DLQ with its reason and, redriven once fixed, runs once (R7)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from bench.reliability import (
    Bench,
    crash_after_trigger,
    crash_before_ledger_write,
    plan_seen,
    r3_killed_worker,
    r4_fuzz,
    r6_debug_logs,
    r7_poison_redrive,
    r8_crash_after_trigger,
)

from testrelay.observability import SDK_BODY_LOGGERS, quiet_sdk_body_logs
from testrelay.vendors import testsigma
from testrelay.vendors.http import VendorSession
from testrelay.vendors.testsigma import marked_build_number
from testrelay_local.sandbox import DEMO_PLAN_ID, DEMO_TESTSIGMA_API_KEY, Sandbox


@pytest.fixture(scope="module")
def bench() -> Iterator[Bench]:
    bench = Bench(quick=True)
    yield bench
    bench.close()


@pytest.mark.parametrize("listing", ["filtered", "unfiltered", "absent"])
def test_a_trigger_that_died_before_its_ledger_write_is_found_not_repeated(bench: Bench, listing: str) -> None:
    # Given an account whose run listing is `listing` (`absent`: the documented account), a plan an
    # earlier job triggered, and a TriggerPlan that dies after Testsigma answered
    runtime = bench.runtime("default", run_duration=0.0)
    # When the step runs again
    runs, recorded, first = crash_after_trigger(runtime, listing)
    # Then the first attempt's run is the job's only run, and it is the one the ledger now holds
    assert first == 1
    assert [int(run["id"]) for run in runs] == [recorded]


def test_someone_else_triggering_the_plan_meanwhile_does_not_hide_the_run(bench: Bench) -> None:
    from testrelay.relay.run import trigger_plan
    from tests.support import demo_job

    # Given the documented account (no listing), a plan an earlier job triggered, and a TriggerPlan
    # that dies after Testsigma answered, after which someone else triggers the plan twice
    runtime = bench.runtime("default", run_duration=0.0)
    assert runtime.sandbox is not None
    runtime.sandbox.configure(ts_run_listing="absent")
    plan_seen(runtime, True)
    job = demo_job(delivery="crash-then-others")
    with crash_before_ledger_write(), contextlib.suppress(BaseException):
        trigger_plan(job)
    client = testsigma.TestsigmaClient(
        VendorSession("testsigma", runtime.sandbox.testsigma_url, {"Authorization": f"Bearer {DEMO_TESTSIGMA_API_KEY}"})
    )
    others = [int(client.trigger(DEMO_PLAN_ID, build_number=f"manual {n}")["id"]) for n in range(2)]
    # When the step runs again
    recorded = trigger_plan(job).run_id
    # Then it walked back from the plan's latest run to the job's own: one run of the job, recorded
    ours = [
        int(r["id"]) for r in runtime.sandbox.state()["testsigma"]["runs"].values() if job.id in (r["buildNo"] or "")
    ]
    assert ours == [recorded]
    assert recorded < min(others)


def test_on_a_plan_never_triggered_without_a_listing_the_relay_says_so_and_triggers_again(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the documented account (no way to list a plan's runs) and a plan the relay never saw a run of
    runtime = bench.runtime("default", run_duration=0.0)
    # When a TriggerPlan dies before its ledger write and runs again
    runs, recorded, _ = crash_after_trigger(runtime, "absent", seen_before=False)
    # Then it triggers again (the residual window), the second run is the one recorded
    assert len(runs) == 2
    assert recorded == max(int(run["id"]) for run in runs)
    # And its log says why
    assert "nor a run of the plan seen before to read the plan's latest run from: triggering again" in caplog.text


def test_r8_figures(bench: Bench) -> None:
    rows = r8_crash_after_trigger(bench)
    assert [row.scenario for row in rows] == [
        "R8 listing=filtered",
        "R8 listing=unfiltered",
        "R8 listing=absent",
        "R8 listing=absent, plan never triggered before",
    ]
    assert all(row.ok for row in rows), rows


def test_r6_no_secret_in_debug_logs(bench: Bench) -> None:
    [row] = r6_debug_logs(bench)
    assert row.ok, row


def test_r4_fuzz_at_small_size(bench: Bench) -> None:
    [row] = r4_fuzz(bench, requests_count=300, seed=11)
    assert row.ok, row


def test_r3_killed_write_back_worker_resumes_at_k_through_the_state_machine_retry(bench: Bench) -> None:
    [row] = r3_killed_worker(bench, cases=100, k=2)
    assert row.ok, row


def test_r7_a_job_whose_start_keeps_failing_is_redriven_once_fixed_and_runs_once(bench: Bench) -> None:
    [row] = r7_poison_redrive(bench)
    assert row.ok, row


def test_sdk_body_loggers_stay_above_debug_whatever_a_caller_asks() -> None:
    # Given a caller that turns botocore's logging all the way up, as boto3's own helper does
    boto3.set_stream_logger("botocore", logging.DEBUG)
    try:
        for name in SDK_BODY_LOGGERS:
            logging.getLogger(name).setLevel(logging.DEBUG)
        quiet_sdk_body_logs()
        # Then the body-logging modules still drop DEBUG records
        for name in SDK_BODY_LOGGERS:
            sdk_logger = logging.getLogger(name)
            assert not sdk_logger.isEnabledFor(logging.DEBUG)
            sdk_logger.setLevel(logging.DEBUG)  # even lowered again afterwards, the filter holds
            record = sdk_logger.makeRecord(name, logging.DEBUG, __file__, 1, "Response body: %r", ("s3cr3t",), None)
            assert not sdk_logger.filter(record)
    finally:
        logging.getLogger("botocore").handlers.clear()
        logging.getLogger("botocore").setLevel(logging.NOTSET)
        quiet_sdk_body_logs()


# ------------------------------------------------------------------ the listing, client against sandbox


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(run_duration=0) as sandbox:
        yield sandbox


def _trigger(sandbox: Sandbox, build_no: str, **extra: Any) -> int:
    answer = requests.post(
        f"{sandbox.testsigma_url}/execution_results",
        json={"executionId": DEMO_PLAN_ID, "buildNo": build_no, **extra},
        headers={"Authorization": f"Bearer {DEMO_TESTSIGMA_API_KEY}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return int(answer.json()["id"])


@pytest.mark.parametrize("listing", ["absent", "filtered", "unfiltered"])
def test_the_client_finds_marked_runs_under_every_listing_variant(sandbox: Sandbox, listing: str) -> None:
    sandbox.reset()
    sandbox.configure(ts_run_listing=listing)
    client = testsigma.TestsigmaClient(
        VendorSession("testsigma", sandbox.testsigma_url, {"Authorization": f"Bearer {DEMO_TESTSIGMA_API_KEY}"})
    )
    mine = marked_build_number("octo@abc #1", "job-a")
    # Given the job's run among 120 others of the same plan (more than two listing pages)
    ours = _trigger(sandbox, mine)
    for index in range(120):
        _trigger(sandbox, marked_build_number("octo@abc #1", f"job-{index}"))
    # When the client looks for the job's runs
    found = client.find_runs(DEMO_PLAN_ID, mine, "job-a", page_size=50, max_pages=5)
    # Then it finds exactly that run, or says there is no listing
    if listing == "absent":
        assert found is None
    else:
        assert found is not None
        assert [run["id"] for run in found] == [ours]
    # And a job that never triggered finds nothing
    never = client.find_runs(DEMO_PLAN_ID, marked_build_number("x", "job-none"), "job-none", max_pages=5)
    assert never == (None if listing == "absent" else [])


@pytest.mark.parametrize(("listing", "seen_before"), [("filtered", True), ("absent", True), ("absent", False)])
def test_a_trigger_whose_answer_was_lost_adopts_the_run_it_started(
    bench: Bench, monkeypatch: pytest.MonkeyPatch, listing: str, seen_before: bool
) -> None:
    from testrelay.errors import VendorOutcomeUnknown
    from testrelay.relay.run import trigger_plan
    from tests.support import demo_job

    # Given an account whose listing is `listing`, a plan an earlier job triggered (or never), and a
    # trigger that Testsigma applies but whose answer never comes
    runtime = bench.runtime("default", run_duration=0.0)
    assert runtime.sandbox is not None
    runtime.sandbox.configure(ts_run_listing=listing)
    plan_seen(runtime, seen_before)
    original = testsigma.TestsigmaClient.trigger

    def lost(self: testsigma.TestsigmaClient, *args: Any, **kwargs: Any) -> dict[str, Any]:
        original(self, *args, **kwargs)
        raise VendorOutcomeUnknown("testsigma", "POST /execution_results: no answer within 10s")

    monkeypatch.setattr(testsigma.TestsigmaClient, "trigger", lost)
    job = demo_job(delivery=f"lost-answer-{listing}-{seen_before}")

    def held() -> list[dict[str, Any]]:
        runs = runtime.sandbox.state()["testsigma"]["runs"].values() if runtime.sandbox else []
        return [r for r in runs if job.id in (r["buildNo"] or "")]

    if not seen_before:
        # When the step runs with nothing to look the run up in, it fails with the outcome unknown,
        # never triggering twice
        with pytest.raises(VendorOutcomeUnknown):
            trigger_plan(job)
        assert len(held()) == 1
        return
    # When the step runs
    run = trigger_plan(job)
    # Then it adopts the run it started (from the listing, or the plan's lastRunId), the job's only run
    assert [int(r["id"]) for r in held()] == [run.run_id]
