"""Exactly once under unknown outcomes, through the whole local runtime: a write whose answer is lost
(the vendor applied it, then answered 504 or dropped the connection), a run creation whose answer is
lost, a write-back worker that dies after the vendor applied a batch, and a fifth of all vendor calls
faulted. Counted where a user would look: the rows each vendor holds.

Every case's Testsigma result is SUCCESS, FAILURE or NOT_EXECUTED in turn; each target kind gets
every case: BrowserStack one result per case, Test Management one status update per case, Testsigma
one override per NOT_EXECUTED case.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from testrelay.relay import write_back as write_back_module
from testrelay.relay.writers import common
from testrelay.relay.writers.common import Budget
from testrelay.settings import get_settings
from testrelay_local.runtime import LocalRuntime, reset_process_caches
from testrelay_local.sandbox import DEMO_TM_STATUSES, SandboxSeed
from testrelay_local.sandbox.seed import BsCaseSeed, BsProjectSeed, PlanCaseSeed, PlanSeed, TmCaseSeed, TmProjectSeed
from testrelay_local.signing import github_headers
from tests.support import ROOT, ledger, tm_run_cases, wait_for_execution

PAYLOAD = (ROOT / "events" / "github" / "workflow_run.completed.payload.json").read_bytes()
PLAN_ID, TM_PROJECT, BS_PROJECT = 1, "tm-reconcile", "PR-9"
SMALL, LARGE = 60, 2000
RESULTS = ("SUCCESS", "FAILURE", "NOT_EXECUTED")
BS_STATUS = {"SUCCESS": "passed", "FAILURE": "failed", "NOT_EXECUTED": "skipped"}
TM_STATUS = {"SUCCESS": "Passed", "FAILURE": "Failed", "NOT_EXECUTED": "Untested"}
TM_STATUS_IDS = "\n".join(
    f"          {status}: {DEMO_TM_STATUSES[name]}"
    for status, name in (
        ("passed", "Passed"),
        ("failed", "Failed"),
        ("blocked", "Blocked"),
        ("skipped", "Skipped"),
        ("untested", "Untested"),
    )
)
ROUTES = f"""
version: 1
routes:
  - name: reconcile
    match: {{repositories: [octo-org/octo-repo], workflows: ["*"]}}
    testsigma: {{test_plan_id: {PLAN_ID}}}
    polling: {{first_wait_seconds: 0, max_wait_seconds: 1, deadline_seconds: 600}}
    targets:
      - kind: testsigma_tm
        name: tm
        project_id: {TM_PROJECT}
        match_by: [id_token]
        batch_size: 20
        status_ids:
{TM_STATUS_IDS}
      - kind: browserstack_tm
        name: bs
        project_id: {BS_PROJECT}
        match_by: [id_token]
        statuses: {{untested: skipped}}
        batch_size: 20
        cases_per_call: 5000
        bulk_results: true
      - kind: testsigma_override
        name: overrides
        overrides: {{NOT_EXECUTED: FAILURE}}
        batch_size: 5
"""
TARGET_WRITERS = {"tm": "write_testsigma_tm", "bs": "write_browserstack_tm", "overrides": "write_testsigma_override"}


def _seed(cases: int) -> SandboxSeed:
    demo = SandboxSeed.demo()
    names = [f"[TC-{n}] case {n}" for n in range(1, cases + 1)]
    return demo.model_copy(
        update={
            "test_plans": {
                PLAN_ID: PlanSeed(
                    name="Reconcile",
                    cases=[
                        PlanCaseSeed(
                            testCaseId=10_000 + n,
                            testCaseName=names[n - 1],
                            testSuiteId=1,
                            testSuiteName="suite",
                            result=RESULTS[n % 3],  # type: ignore[arg-type]
                        )
                        for n in range(1, cases + 1)
                    ],
                )
            },
            "tm_projects": {
                TM_PROJECT: TmProjectSeed(
                    name="Reconcile",
                    cases=[
                        TmCaseSeed(id=f"tm-{n}", human_id=f"TC-{n}", title=f"case {n}") for n in range(1, cases + 1)
                    ],
                )
            },
            "bs_projects": {
                BS_PROJECT: BsProjectSeed(
                    name="Reconcile",
                    cases=[BsCaseSeed(identifier=f"TC-{n}", title=f"case {n}") for n in range(1, cases + 1)],
                )
            },
            "bs_async_delay_s": 0.0,
        }
    )


@pytest.fixture(scope="module")
def local_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    routes = tmp_path_factory.mktemp("routes") / "routes.yaml"
    routes.write_text(ROUTES)
    with pytest.MonkeyPatch.context() as env:
        # Pacing is not what is tested here: the sandbox's own throttle is off, and a throttle fault
        # asks for a one-second pause.
        env.setenv("BROWSERSTACK_TM_RATE_LIMIT", "100000")
        env.setenv("BROWSERSTACK_TM_THROTTLE_WAIT_SECONDS", "1")
        with LocalRuntime(
            routes_file=Path(routes), time_scale=0.0, sandbox_run_duration=0, sandbox_seed=_seed(SMALL)
        ) as runtime:
            yield runtime


def _prepare(runtime: LocalRuntime, cases: int, bulk: bool, rules: list[dict[str, Any]]) -> None:
    assert runtime.sandbox is not None
    reset_process_caches()
    runtime.sandbox.load_seed(_seed(cases))
    runtime.sandbox.reset()
    runtime.sandbox.set_throttle(testsigma_tm={"enabled": False}, browserstack_tm={"enabled": False})
    runtime.sandbox.configure(bs_bulk_results="present" if bulk else "absent")
    runtime.sandbox.set_faults(rules=rules)


def _deliver(runtime: LocalRuntime) -> str:
    headers = github_headers(runtime.webhook_secret, PAYLOAD, "workflow_run", str(uuid.uuid4()))
    answer = requests.post(runtime.webhook_url("github"), data=PAYLOAD, headers=headers, timeout=10)
    assert answer.status_code == 202, answer.text
    [job_id] = answer.json()["jobs"]
    return str(job_id)


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


def _not_executed(cases: int) -> int:
    return sum(1 for n in range(1, cases + 1) if RESULTS[n % 3] == "NOT_EXECUTED")


def _assert_job_written(runtime: LocalRuntime, job_id: str, cases: int) -> None:
    assert _outcomes(runtime, job_id) == {
        "tm": ("written", cases),
        "bs": ("written", cases),
        "overrides": ("written", _not_executed(cases)),
    }


def _calls(runtime: LocalRuntime, vendor: str, endpoint: str) -> int:
    assert runtime.sandbox is not None
    return int(runtime.sandbox.state()["requests"][vendor].get(endpoint, {}).get("calls", 0))


BS_RESULTS = "POST /api/v2/projects/{project_id}/test-runs/{run_id}/results"
BS_BULK = BS_RESULTS + "/bulk"
BS_LIST_RESULTS = "GET /api/v2/projects/{project_id}/test-runs/{run_id}/results"
TM_UPDATE = "PUT /projects/{project_id}/test_runs/{test_run_id}/test_cases"
TM_LIST_CASES = "GET /projects/{project_id}/test_runs/{test_run_id}/test_cases"
OVERRIDE = "PUT /execution_results/{run_id}/override"


@pytest.mark.parametrize("kind", ["lost_answer", "lost_connection"])
@pytest.mark.parametrize("bulk", [True, False], ids=["bulk", "single"])
def test_a_results_write_whose_answer_is_lost_lands_exactly_once(runtime: LocalRuntime, kind: str, bulk: bool) -> None:
    # Given each target kind's write applied by the vendor but its answer lost, once, after a few calls
    _prepare(
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
    job_id = _deliver(runtime)
    # Then the job succeeds and every vendor holds every row exactly once
    assert wait_for_execution(runtime, job_id, timeout=120)["status"] == "SUCCEEDED"
    _assert_every_row_once(runtime, SMALL)
    _assert_job_written(runtime, job_id, SMALL)
    assert runtime.sandbox is not None
    assert runtime.sandbox.state()["faults"]["injected"] == {kind: 3}
    # And each lost answer was followed by reading back what the run holds
    assert _calls(runtime, "browserstack_tm", BS_LIST_RESULTS) >= 1
    assert _calls(runtime, "testsigma_tm", TM_LIST_CASES) >= 1
    # The sends: every batch once, and the one whose answer was lost not again (it was found applied)
    assert _calls(runtime, "browserstack_tm", BS_BULK if bulk else BS_RESULTS) == (SMALL // 20 if bulk else SMALL)
    assert _calls(runtime, "testsigma_tm", TM_UPDATE) == SMALL // 20
    assert _calls(runtime, "testsigma", OVERRIDE) == _not_executed(SMALL) // 5


def test_a_true_500_is_sent_again_and_lands_once(runtime: LocalRuntime) -> None:
    # Given each results write answering a true 500 (not applied) once
    _prepare(
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
    job_id = _deliver(runtime)
    assert wait_for_execution(runtime, job_id, timeout=120)["status"] == "SUCCEEDED"
    # Then the read-back found the batch missing and sent it again: every row once
    _assert_every_row_once(runtime, SMALL)
    _assert_job_written(runtime, job_id, SMALL)
    assert _calls(runtime, "browserstack_tm", BS_BULK) == SMALL // 20 + 1
    assert _calls(runtime, "testsigma_tm", TM_UPDATE) == SMALL // 20 + 1
    assert _calls(runtime, "testsigma", OVERRIDE) == _not_executed(SMALL) // 5 + 1


def test_a_run_creation_whose_answer_is_lost_makes_one_run_not_two(runtime: LocalRuntime) -> None:
    # Given both run creations applied but answered 504
    _prepare(
        runtime,
        SMALL,
        True,
        [
            {"vendor": "browserstack_tm", "method": "POST", "path": "/test-runs$", "kind": "lost_answer", "times": 1},
            {"vendor": "testsigma_tm", "method": "POST", "path": "/test_runs$", "kind": "lost_connection", "times": 1},
        ],
    )
    job_id = _deliver(runtime)
    assert wait_for_execution(runtime, job_id, timeout=120)["status"] == "SUCCEEDED"
    # Then each target kind has one run (found in the run list by its name and the job's marker)
    _assert_every_row_once(runtime, SMALL)
    _assert_job_written(runtime, job_id, SMALL)
    assert _calls(runtime, "browserstack_tm", "POST /api/v2/projects/{project_id}/test-runs") == 1
    assert _calls(runtime, "testsigma_tm", "POST /projects/{project_id}/test_runs") == 1


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
    _prepare(runtime, SMALL, bulk, [])
    captured = _capturing(monkeypatch)
    confirmed: dict[str, int] = {}

    def die_after_k(target: str, position: int) -> None:
        confirmed[target] = confirmed.get(target, 0) + 1
        if confirmed[target] == k + 1:  # the vendor applied batch k+1; the worker dies before saving it
            raise WorkerDied(f"{target} killed at {position}")

    monkeypatch.setattr(common, "batch_applied_hook", die_after_k)
    # When a delivery's write-back workers die after k confirmed batches (k+1 applied)
    job_id = _deliver(runtime)
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
    sent_bs = _calls(runtime, "browserstack_tm", BS_BULK if bulk else BS_RESULTS)
    assert sent_bs == SMALL // per_batch
    assert _calls(runtime, "testsigma_tm", TM_UPDATE) == SMALL // 20
    assert _calls(runtime, "testsigma", OVERRIDE) == _not_executed(SMALL) // 5
    # And the resumed worker read back once per target kind (reconciling the batch left unconfirmed)
    assert _calls(runtime, "browserstack_tm", BS_LIST_RESULTS) == 1
    assert _calls(runtime, "testsigma_tm", TM_LIST_CASES) == 1


@pytest.mark.parametrize("seed", [11, 23, 37])
def test_a_fifth_of_all_calls_faulted_still_writes_every_result_once(runtime: LocalRuntime, seed: int) -> None:
    # Given a fifth of every vendor call faulted: throttled, 503, answer lost after applying, connection dropped
    rules: list[dict[str, Any]] = []
    # (Testsigma: its override call only; the trigger is not what is tested here.)
    for offset, (vendor, method) in enumerate((("browserstack_tm", "*"), ("testsigma_tm", "*"), ("testsigma", "PUT"))):
        for index, kind in enumerate(("throttle", "server_error", "lost_answer", "lost_connection")):
            # Rules are tried in turn, each on the calls the ones before let through: 5 % of all calls each.
            rate = 0.05 / (1 - 0.05 * index)
            rules.append(
                {
                    "vendor": vendor,
                    "method": method,
                    "kind": kind,
                    "rate": rate,
                    "seed": seed * 100 + offset * 10 + index,
                }
            )
    _prepare(runtime, LARGE, True, rules)
    job_id = _deliver(runtime)
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
    _prepare(
        runtime,
        SMALL,
        True,
        [
            {"vendor": "browserstack_tm", "method": "POST", "path": "/results/bulk$", "kind": "internal_error"},
            {"vendor": "testsigma_tm", "method": "PUT", "path": "/test_cases$", "kind": "internal_error"},
        ],
    )
    job_id = _deliver(runtime)
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
    assert _calls(runtime, "browserstack_tm", BS_BULK) == 15
    assert _calls(runtime, "testsigma_tm", TM_UPDATE) == 15 * min(get_settings().write_back_in_flight, SMALL // 20)
    # And nothing is at the vendors: no result, no status
    assert runtime.sandbox is not None
    [bs_run] = runtime.sandbox.state()["browserstack_tm"]["projects"][BS_PROJECT]["test_runs"].values()
    assert all(case["results"] == [] for case in bs_run["test_cases"])
    [tm_run] = tm_run_cases(runtime).values()
    assert all(case["update_count"] == 0 for case in tm_run["test_run_cases"])
