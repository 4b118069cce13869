"""Exactly once under unknown outcomes, through the whole local runtime: a write whose answer is lost
(the vendor applied it, then answered 504 or dropped the connection), a run creation whose answer is
lost, a write-back worker that dies after the vendor applied a batch, and a fifth of all vendor calls
faulted. Counted where a user would look: the rows each vendor holds.

Every case's Testsigma result is SUCCESS, FAILURE or NOT_EXECUTED in turn; each target kind gets
every case: BrowserStack one result per case, Test Management one status update per case, Testsigma
one override per NOT_EXECUTED case.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from testrelay.relay import write_back as write_back_module
from testrelay.relay.writers import common
from testrelay.relay.writers.common import Budget
from testrelay.settings import get_settings
from testrelay.vendors import testsigma_tm as tm_vendor
from testrelay_local.reconciliation import (
    BS_BULK,
    BS_LIST_RESULTS,
    BS_PROJECT,
    BS_RESULTS,
    BS_STATUS,
    ENVIRONMENT,
    OVERRIDE,
    RESULTS,
    ROUTES,
    TM_LIST_CASES,
    TM_STATUS,
    TM_UPDATE,
    calls,
    deliver,
    fault_rules,
    not_executed,
    prepare,
    seed,
)
from testrelay_local.runtime import LocalRuntime
from tests.support import history, ledger, tm_run_cases, wait_for_execution

SMALL, LARGE = 60, 2000
TARGET_WRITERS = {"tm": "write_testsigma_tm", "bs": "write_browserstack_tm", "overrides": "write_testsigma_override"}


@pytest.fixture(scope="module")
def local_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    routes = tmp_path_factory.mktemp("routes") / "routes.yaml"
    routes.write_text(ROUTES)
    with pytest.MonkeyPatch.context() as env:
        for name, value in ENVIRONMENT.items():
            env.setenv(name, value)
        with LocalRuntime(
            routes_file=Path(routes), time_scale=0.0, sandbox_run_duration=0, sandbox_seed=seed(SMALL)
        ) as runtime:
            yield runtime


def _outcomes(runtime: LocalRuntime, job_id: str) -> dict[str, tuple[str, int]]:
    record = ledger(runtime).get_job(job_id)
    assert record is not None
    return {t["target"]: (t["status"], int(t["written"])) for t in record["targets"]}


def _assert_every_row_once(runtime: LocalRuntime, cases: int) -> None:
    """One run per target, every case written exactly once with its status: 0 duplicates, 0 missing."""
    assert runtime.sandbox is not None
    state = runtime.sandbox.state()
    expected = {f"TC-{n}": RESULTS[n % 3] for n in range(1, cases + 1)}
    # BrowserStack: one run, one result per case
    [bs_run] = state["browserstack_tm"]["projects"][BS_PROJECT]["test_runs"].values()
    results = {case["identifier"]: [r["status"] for r in case["results"]] for case in bs_run["test_cases"]}
    assert results == {case: [BS_STATUS[result]] for case, result in expected.items()}
    # Test Management: one run, each case's status set once
    [tm_run] = tm_run_cases(runtime).values()
    tm = {case["human_id"]: (case["status_name"], case["update_count"]) for case in tm_run["test_run_cases"]}
    assert tm == {case: (TM_STATUS[result], 1) for case, result in expected.items()}
    # Testsigma: each NOT_EXECUTED case overridden once, nothing else
    [testsigma_run] = state["testsigma"]["runs"].values()
    overridden = {
        c["testCaseId"]: [o["result"] for o in c["overrides"]] for c in testsigma_run["cases"] if c["overrides"]
    }
    assert overridden == {10_000 + n: ["FAILURE"] for n in range(1, cases + 1) if RESULTS[n % 3] == "NOT_EXECUTED"}


def _assert_job_written(runtime: LocalRuntime, job_id: str, cases: int) -> None:
    assert _outcomes(runtime, job_id) == {
        "tm": ("written", cases),
        "bs": ("written", cases),
        "overrides": ("written", not_executed(cases)),
    }


@pytest.mark.parametrize("kind", ["lost_answer", "lost_connection"])
@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "single"])
def test_a_results_write_whose_answer_is_lost_lands_exactly_once(runtime: LocalRuntime, kind: str, bulk: bool) -> None:
    # Given each target kind's write applied by the vendor but its answer lost, once, after a few calls
    prepare(
        runtime,
        SMALL,
        bulk,
        [
            {
                "vendor": "browserstack_tm",
                "method": "POST",
                "path": "/results(/bulk)?$",
                "kind": kind,
                "after": 1,
                "times": 1,
            },
            {"vendor": "testsigma_tm", "method": "PUT", "path": "/test_cases$", "kind": kind, "after": 1, "times": 1},
            {"vendor": "testsigma", "method": "PUT", "path": "/override$", "kind": kind, "after": 1, "times": 1},
        ],
    )
    # When a delivery arrives
    job_id = deliver(runtime)
    # Then the job succeeds and every vendor holds every row exactly once
    assert wait_for_execution(runtime, job_id, timeout=120)["status"] == "SUCCEEDED"
    _assert_every_row_once(runtime, SMALL)
    _assert_job_written(runtime, job_id, SMALL)
    assert runtime.sandbox is not None
    assert runtime.sandbox.state()["faults"]["injected"] == {kind: 3}
    # And each lost answer was followed by reading back what the run holds
    assert calls(runtime, "browserstack_tm", BS_LIST_RESULTS) >= 1
    assert calls(runtime, "testsigma_tm", TM_LIST_CASES) >= 1
    # The sends: every batch once, and the one whose answer was lost not again (it was found applied)
    assert calls(runtime, "browserstack_tm", BS_BULK if bulk else BS_RESULTS) == (SMALL // 20 if bulk else SMALL)
    assert calls(runtime, "testsigma_tm", TM_UPDATE) == SMALL // 20
    assert calls(runtime, "testsigma", OVERRIDE) == not_executed(SMALL) // 5


def test_a_true_500_is_sent_again_and_lands_once(runtime: LocalRuntime) -> None:
    # Given each results write answering a true 500 (not applied) once
    prepare(
        runtime,
        SMALL,
        True,
        [
            {
                "vendor": "browserstack_tm",
                "method": "POST",
                "path": "/results/bulk$",
                "kind": "internal_error",
                "times": 1,
            },
            {"vendor": "testsigma_tm", "method": "PUT", "path": "/test_cases$", "kind": "internal_error", "times": 1},
            {"vendor": "testsigma", "method": "PUT", "path": "/override$", "kind": "internal_error", "times": 1},
        ],
    )
    job_id = deliver(runtime)
    assert wait_for_execution(runtime, job_id, timeout=120)["status"] == "SUCCEEDED"
    # Then the read-back found the batch missing and sent it again: every row once
    _assert_every_row_once(runtime, SMALL)
    _assert_job_written(runtime, job_id, SMALL)
    assert calls(runtime, "browserstack_tm", BS_BULK) == SMALL // 20 + 1
    assert calls(runtime, "testsigma_tm", TM_UPDATE) == SMALL // 20 + 1
    assert calls(runtime, "testsigma", OVERRIDE) == not_executed(SMALL) // 5 + 1


def test_a_run_creation_whose_answer_is_lost_makes_one_run_not_two(runtime: LocalRuntime) -> None:
    # Given both run creations applied but answered 504
    prepare(
        runtime,
        SMALL,
        True,
        [
            {"vendor": "browserstack_tm", "method": "POST", "path": "/test-runs$", "kind": "lost_answer", "times": 1},
            {"vendor": "testsigma_tm", "method": "POST", "path": "/test_runs$", "kind": "lost_connection", "times": 1},
        ],
    )
    job_id = deliver(runtime)
    assert wait_for_execution(runtime, job_id, timeout=120)["status"] == "SUCCEEDED"
    # Then each target kind has one run (found in the run list by its name and the job's marker)
    _assert_every_row_once(runtime, SMALL)
    _assert_job_written(runtime, job_id, SMALL)
    assert calls(runtime, "browserstack_tm", "POST /api/v2/projects/{project_id}/test-runs") == 1
    assert calls(runtime, "testsigma_tm", "POST /projects/{project_id}/test_runs") == 1


class WorkerDied(Exception):
    """Raised inside the writer where a killed worker would stop: after the vendor applied a batch."""


def _capturing(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[Any, ...]]:
    """Keeps each writer's arguments, so the test can invoke it again as the state machine would."""
    captured: dict[str, tuple[Any, ...]] = {}
    for name, attribute in TARGET_WRITERS.items():
        original: Callable[..., dict[str, Any]] = getattr(write_back_module, attribute)

        def capture(*args: Any, _original: Callable[..., dict[str, Any]] = original, _name: str = name) -> Any:
            captured[_name] = args[:4]
            return _original(*args)

        monkeypatch.setattr(write_back_module, attribute, capture)
    return captured


@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "single"])
def test_a_worker_killed_after_k_batches_resumes_at_k_without_duplicates(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch, bulk: bool
) -> None:
    k = 2
    prepare(runtime, SMALL, bulk, [])
    captured = _capturing(monkeypatch)
    confirmed: dict[str, int] = {}

    def die_after_k(target: str, position: int) -> None:
        confirmed[target] = confirmed.get(target, 0) + 1
        if confirmed[target] == k + 1:  # the vendor applied batch k+1; the worker dies before saving it
            raise WorkerDied(f"{target} killed at {position}")

    monkeypatch.setattr(common, "batch_applied_hook", die_after_k)
    # When a delivery's write-back workers die after k confirmed batches (k+1 applied)
    job_id = deliver(runtime)
    wait_for_execution(runtime, job_id, timeout=120)
    assert set(confirmed) == set(TARGET_WRITERS)
    # and each is invoked again from its checkpoint (as the state machine's retry does)
    monkeypatch.setattr(common, "batch_applied_hook", None)
    for name in TARGET_WRITERS:
        answer: dict[str, Any] = {"more": True}
        while answer["more"]:
            answer = write_back_module.write_back(*captured[name], Budget(time.monotonic() + 60))
        assert answer["status"] == "written", answer
    # Then every row is there once: the batch applied before the death was found, not sent again
    _assert_every_row_once(runtime, SMALL)
    per_batch = 20 if bulk else 1
    sent_bs = calls(runtime, "browserstack_tm", BS_BULK if bulk else BS_RESULTS)
    assert sent_bs == SMALL // per_batch
    assert calls(runtime, "testsigma_tm", TM_UPDATE) == SMALL // 20
    assert calls(runtime, "testsigma", OVERRIDE) == not_executed(SMALL) // 5
    # And the resumed worker read back once per target kind (reconciling the batch left unconfirmed)
    assert calls(runtime, "browserstack_tm", BS_LIST_RESULTS) == 1
    assert calls(runtime, "testsigma_tm", TM_LIST_CASES) == 1


def test_a_read_back_page_that_keeps_failing_is_read_again_not_fatal(runtime: LocalRuntime) -> None:
    # Given a write at BrowserStack and at Test Management applied but its answer lost, once, and the
    # read-back that follows failing six calls in a row (503, a true 500): past the HTTP session's retries
    prepare(
        runtime,
        SMALL,
        True,
        [
            {
                "vendor": "browserstack_tm",
                "method": "POST",
                "path": "/bulk$",
                "kind": "lost_answer",
                "after": 1,
                "times": 1,
            },
            {
                "vendor": "testsigma_tm",
                "method": "PUT",
                "path": "/test_cases$",
                "kind": "lost_answer",
                "after": 1,
                "times": 1,
            },
            {"vendor": "browserstack_tm", "method": "GET", "path": "/results$", "kind": "server_error", "times": 6},
            {
                "vendor": "testsigma_tm",
                "method": "GET",
                "path": "/test_runs/[^/]+/test_cases$",
                "kind": "internal_error",
                "times": 6,
            },
        ],
    )
    # When a delivery arrives
    job_id = deliver(runtime)
    # Then the page is read again until it answers: the job succeeds, every row once, no target failed
    assert wait_for_execution(runtime, job_id, timeout=120)["status"] == "SUCCEEDED"
    _assert_every_row_once(runtime, SMALL)
    _assert_job_written(runtime, job_id, SMALL)
    assert runtime.sandbox is not None
    assert runtime.sandbox.state()["faults"]["injected"] == {"lost_answer": 2, "server_error": 6, "internal_error": 6}
    # And the batch whose answer was lost was found applied, not sent again
    assert calls(runtime, "browserstack_tm", BS_BULK) == SMALL // 20
    assert calls(runtime, "testsigma_tm", TM_UPDATE) == SMALL // 20


def test_a_read_back_longer_than_an_invocation_goes_on_from_its_last_page(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a run of 300 cases (three pages of Test Management's run cases), each write-back invocation
    # allowed one unit of work, and the write of the tenth batch (cases 181-200) applied but its answer lost
    monkeypatch.setitem(os.environ, "WRITE_BACK_SLICE_SECONDS", "0.001")
    get_settings.cache_clear()
    caplog.set_level(logging.INFO, logger="testrelay")
    cases = 300
    prepare(
        runtime,
        cases,
        True,
        [
            {
                "vendor": "testsigma_tm",
                "method": "PUT",
                "path": "/test_cases$",
                "kind": "lost_answer",
                "after": 9,
                "times": 1,
            }
        ],
    )
    try:
        # When a delivery arrives
        job_id = deliver(runtime)
        # Then the job succeeds with every row once
        assert wait_for_execution(runtime, job_id, timeout=300)["status"] == "SUCCEEDED"
    finally:
        get_settings.cache_clear()
    _assert_every_row_once(runtime, cases)
    _assert_job_written(runtime, job_id, cases)
    # And the read-back, handed over after its first page, went on from there to the batch's page and
    # stopped: pages 1 and 2 read once each, page 3 never
    assert caplog.text.count("write-back handed over during a read-back") == 1
    assert calls(runtime, "testsigma_tm", TM_LIST_CASES) == 2
    assert calls(runtime, "testsigma_tm", TM_UPDATE) == cases // 20


@pytest.mark.parametrize("draws", [11, 23, 37])
def test_a_fifth_of_all_calls_faulted_still_writes_every_result_once(runtime: LocalRuntime, draws: int) -> None:
    # Given a fifth of every vendor call faulted: throttled, 503, answer lost after applying, connection dropped
    rules = fault_rules(("throttle", "server_error", "lost_answer", "lost_connection"), 0.2, draws)
    prepare(runtime, LARGE, True, rules)
    job_id = deliver(runtime)
    assert wait_for_execution(runtime, job_id, timeout=600)["status"] == "SUCCEEDED"
    # Then 100 % of the results are at each vendor once: 0 duplicates, 0 missing
    _assert_every_row_once(runtime, LARGE)
    _assert_job_written(runtime, job_id, LARGE)
    assert runtime.sandbox is not None
    injected = runtime.sandbox.state()["faults"]["injected"]
    assert set(injected) == {"throttle", "server_error", "lost_answer", "lost_connection"}


def test_a_write_whose_outcome_stays_unknown_fails_the_target_saying_so(runtime: LocalRuntime) -> None:
    # Given every BrowserStack results call answered a 500 (nothing applied, but a POST's 500 is
    # "outcome unknown" to the relay), and Test Management every case update the same
    prepare(
        runtime,
        SMALL,
        True,
        [
            {"vendor": "browserstack_tm", "method": "POST", "path": "/results/bulk$", "kind": "internal_error"},
            {"vendor": "testsigma_tm", "method": "PUT", "path": "/test_cases$", "kind": "internal_error"},
        ],
    )
    job_id = deliver(runtime)
    wait_for_execution(runtime, job_id, timeout=120)
    # Then each read back, found nothing, sent again, and after 5 invocations of 3 tries gave up, saying why
    record = ledger(runtime).get_job(job_id)
    assert record is not None
    targets = {t["target"]: t for t in record["targets"]}
    for name in ("bs", "tm"):
        assert (targets[name]["status"], targets[name]["written"], targets[name]["error"]) == (
            "failed",
            0,
            "VendorOutcomeUnknown",
        )
        assert "unconfirmed" in targets[name]["cause"]
    assert targets["overrides"]["status"] == "written"
    # (BrowserStack's first batch probes the multi-result call alone; Test Management's three batches
    # were in flight together, each tried 3 times an invocation)
    assert calls(runtime, "browserstack_tm", BS_BULK) == 15
    assert calls(runtime, "testsigma_tm", TM_UPDATE) == 15 * min(get_settings().write_back_in_flight, SMALL // 20)
    # And nothing is at the vendors: no result, no status
    assert runtime.sandbox is not None
    [bs_run] = runtime.sandbox.state()["browserstack_tm"]["projects"][BS_PROJECT]["test_runs"].values()
    assert all(case["results"] == [] for case in bs_run["test_cases"])
    [tm_run] = tm_run_cases(runtime).values()
    assert all(case["update_count"] == 0 for case in tm_run["test_run_cases"])


def test_a_target_that_fails_part_way_says_how_much_it_wrote(runtime: LocalRuntime) -> None:
    # Given Test Management taking the first batch, then answering 503 to every write
    prepare(
        runtime,
        SMALL,
        True,
        [{"vendor": "testsigma_tm", "method": "PUT", "path": "/test_cases$", "kind": "server_error", "after": 1}],
    )
    # When a delivery arrives
    job_id = deliver(runtime)
    execution = wait_for_execution(runtime, job_id, timeout=180)
    # Then the execution says the results were written in part
    assert (execution["status"], execution["error"]) == ("FAILED", "ResultsPartlyWritten")
    # And the write-back's own output for the failed target carries what its checkpoint confirmed
    [exited] = [
        json.loads(e["stateExitedEventDetails"]["output"])
        for e in history(runtime, execution["executionArn"])
        if e.get("stateExitedEventDetails", {}).get("name") == "WriteBack"
    ]
    tm = next(o for o in exited["writeback"] if o["target"] == "tm")
    assert (tm["status"], tm["written"], tm["to_write"], tm["error"]) == ("failed", 20, SMALL, "VendorUnavailable")
    assert tm["run_id"] == next(iter(tm_run_cases(runtime)))
    # And so does the job's record
    assert _outcomes(runtime, job_id)["tm"] == ("partial", 20)


@pytest.mark.parametrize("dies", ["before sending", "after the vendor applied it"])
def test_a_worker_killed_while_creating_the_tm_run_leaves_one_run_with_every_case(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch, dies: str
) -> None:
    # Given a write-back worker that dies in the Test Management run's creation, once: before the call
    # goes out, or after the vendor created the run but before the worker recorded it
    prepare(runtime, SMALL, True, [])
    captured = _capturing(monkeypatch)
    create = tm_vendor.TestsigmaTmClient.create_test_run
    died: list[str] = []

    def dying(self: tm_vendor.TestsigmaTmClient, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if died:
            return create(self, *args, **kwargs)
        died.append(dies)
        if dies == "after the vendor applied it":
            create(self, *args, **kwargs)
        raise WorkerDied(dies)

    monkeypatch.setattr(tm_vendor.TestsigmaTmClient, "create_test_run", dying)
    # When a delivery arrives, and its TM writer is invoked again from its checkpoint until it is done
    job_id = deliver(runtime)
    wait_for_execution(runtime, job_id, timeout=120)
    assert died == [dies]
    answer: dict[str, Any] = {"more": True}
    while answer["more"]:
        answer = write_back_module.write_back(*captured["tm"], Budget(time.monotonic() + 60))
    # Then the project holds one run for the job, with every case once and its status set once
    assert answer["status"] == "written", answer
    _assert_every_row_once(runtime, SMALL)
    # And the run was sent for creation once: a creation that may have landed is looked up, not repeated
    assert calls(runtime, "testsigma_tm", "POST /projects/{project_id}/test_runs") == 1
