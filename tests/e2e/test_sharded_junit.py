"""A sharded CI run (8 parallel jobs, 8 JUnit reports, re-run attempts) lands in ONE run per target,
through the real state machine in the local runtime and real HTTP to the sandbox: the shards are
gathered (Step Functions Wait states between looks), merged, and written once."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testrelay_cli.cli import main
from testrelay_cli.junit_push import PushFailed, push_done, push_junit
from testrelay_local.runtime import LocalRuntime
from testrelay_local.samples import numbered_projects
from testrelay_local.sandbox import DEMO_TM_STATUSES, SandboxSeed
from tests.support import ledger, tm_run_cases, wait_for_execution

CASES = 40
SHARDS = 8
TM_PROJECT = "shards-tm"
BS_PROJECT = "PR-SHARDS"
TM_STATUS_IDS = ", ".join(
    f"{status}: {DEMO_TM_STATUSES[name]}"
    for status, name in (
        ("passed", "Passed"),
        ("failed", "Failed"),
        ("blocked", "Blocked"),
        ("skipped", "Skipped"),
        ("untested", "Untested"),
    )
)
TARGETS = f"""
    targets:
      - kind: testsigma_tm
        name: tm
        project_id: {TM_PROJECT}
        run_title: "Shards {{repository}}"
        match_by: [id_token]
        batch_size: 7
        status_ids: {{{TM_STATUS_IDS}}}
      - kind: browserstack_tm
        name: bs
        project_id: {BS_PROJECT}
        run_name: "Shards {{repository}}"
        match_by: [id_token]
        batch_size: 7
"""
WINDOW = "check_seconds: 1, settle_seconds: 2, max_wait_seconds: 60"
ROUTES = f"""
version: 1
routes:
  - name: shards-worst
    testsigma: {{test_plan_id: 2741}}
    junit: {{shards: {{{WINDOW}}}}}
{TARGETS}
  - name: shards-last
    testsigma: {{test_plan_id: 2741}}
    junit: {{shards: {{reruns: last, {WINDOW}}}}}
{TARGETS}
"""


def _seed() -> SandboxSeed:
    return SandboxSeed.demo().model_copy(
        update={
            **numbered_projects(TM_PROJECT, BS_PROJECT, "Shards", CASES),
            "bs_async_delay_s": 0.0,
        }
    )


@pytest.fixture(scope="module")
def local_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    routes = tmp_path_factory.mktemp("routes") / "routes.yaml"
    routes.write_text(ROUTES)
    # Wait states sleep for real (a second between looks): the settle window is wall-clock time.
    with LocalRuntime(routes_file=Path(routes), time_scale=1.0, sandbox_run_duration=0, sandbox_seed=_seed()) as rt:
        yield rt


@pytest.fixture
def runtime(local_runtime: LocalRuntime) -> LocalRuntime:
    assert local_runtime.sandbox is not None
    local_runtime.sandbox.load_seed(_seed())
    local_runtime.sandbox.reset()
    return local_runtime


def _report(tmp_path: Path, name: str, results: dict[int, str]) -> Path:
    """A pytest-style report: `TC-n` in each test's name, `failed` / `skipped` / `passed` per case."""
    cases = []
    for n, outcome in results.items():
        child = {"failed": '<failure message="boom"/>', "skipped": "<skipped/>"}.get(outcome, "")
        cases.append(f'<testcase classname="tests.test_shop" name="TC-{n} checkout">{child}</testcase>')
    path = tmp_path / f"{name}.xml"
    path.write_text(f'<testsuites><testsuite name="pytest">{"".join(cases)}</testsuite></testsuites>')
    return path


def _base(runtime: LocalRuntime) -> str:
    return runtime.webhook_url("generic").split("/webhooks/", 1)[0]


def _push(runtime: LocalRuntime, route: str, report: Path, **shard: str) -> dict[str, Any]:
    return push_junit(report, route, _base(runtime), runtime.webhook_secret, {"repository": "acme/shop"}, shard=shard)


def _tm_run(runtime: LocalRuntime) -> dict[str, Any]:
    [run] = tm_run_cases(runtime).values()
    return run


def _bs_runs(runtime: LocalRuntime) -> list[dict[str, Any]]:
    assert runtime.sandbox is not None
    return list(runtime.sandbox.state()["browserstack_tm"]["projects"][BS_PROJECT]["test_runs"].values())


def test_eight_shards_become_one_run_per_target_with_every_case_once(runtime: LocalRuntime, tmp_path: Path) -> None:
    # Given a CI run split into 8 parallel jobs, each with 5 of the 40 cases (case 12 fails, 13 is skipped)
    outcomes = {n: "failed" if n == 12 else "skipped" if n == 13 else "passed" for n in range(1, CASES + 1)}
    key = f"gh-{uuid.uuid4().hex[:8]}"
    reports = [
        _report(tmp_path, f"shard{i}", {n: outcomes[n] for n in range(i * 5 - 4, i * 5 + 1)}) for i in range(1, 9)
    ]
    # When each job pushes its report with the run key and its shard, and shard 3's CI step is retried
    answers = []
    for index, report in enumerate(reports, start=1):
        answers.append(_push(runtime, "shards-worst", report, run_key=key, shard=f"{index}/{SHARDS}"))
        if index == 3:
            again = _push(runtime, "shards-worst", report, run_key=key, shard="3/8")
    # Then every report joined the same job, and the re-sent shard replaced itself
    assert {job for answer in answers for job in answer["jobs"]} == set(again["jobs"])
    assert [a["replaced"] for a in answers] == [False] * SHARDS
    assert (again["replaced"], again["received"], again["expected"]) == (True, 3, 8)
    [job_id] = answers[0]["jobs"]
    assert wait_for_execution(runtime, job_id, timeout=90)["status"] == "SUCCEEDED"
    # And Test Management holds ONE run with each of the 40 cases once, set once
    run = _tm_run(runtime)
    cases = {case["human_id"]: case for case in run["test_run_cases"]}
    assert len(run["test_run_cases"]) == CASES
    assert {h: c["status_name"] for h, c in cases.items()} == {
        f"TC-{n}": {"failed": "Failed", "skipped": "Skipped"}.get(o, "Passed") for n, o in outcomes.items()
    }
    assert all(case["update_count"] == 1 for case in cases.values())
    # And BrowserStack ONE run with each case once, one result each
    [bs_run] = _bs_runs(runtime)
    results = {case["identifier"]: case["results"] for case in bs_run["test_cases"]}
    assert sorted(results) == sorted(f"TC-{n}" for n in range(1, CASES + 1))
    assert all(len(r) == 1 for r in results.values())
    # And the job's record says all shards were gathered
    record = ledger(runtime).get_job(job_id)
    assert record is not None
    assert record["shards"] == {"received": 8, "expected": 8, "missing": [], "reason": "all shards arrived"}
    assert (record["state"], record["summary"]) == ("reported", "38 passed, 1 failed, 1 skipped; tm: ok; bs: ok")
    # And a shard sent after the write-back started is refused, saying why, and counted
    with pytest.raises(PushFailed, match=r"HTTP 409: run key .* was already gathered \(all shards arrived"):
        _push(runtime, "shards-worst", reports[0], run_key=key, shard="1/8", attempt="2")
    # while the very report the run holds, sent again after a lost answer, is acknowledged
    assert _push(runtime, "shards-worst", reports[7], run_key=key, shard="8/8")["gathered"] is True
    assert len(tm_run_cases(runtime)) == 1


@pytest.mark.parametrize(
    ("route", "expected"), [("shards-worst", "Failed"), ("shards-last", "Passed")], ids=["worst-wins", "reruns-last"]
)
def test_a_rerun_attempt_counts_as_the_route_says(
    runtime: LocalRuntime, tmp_path: Path, route: str, expected: str
) -> None:
    # Given shard 1 of 2 failing case 1, then re-run as attempt 2 where case 1 passes (flaky)
    key = f"rerun-{uuid.uuid4().hex[:8]}"
    first = _push(runtime, route, _report(tmp_path, "a1", {1: "failed", 2: "passed"}), run_key=key, shard="1/2")
    rerun = _report(tmp_path, "a2", {1: "passed", 2: "passed"})
    _push(runtime, route, rerun, run_key=key, shard="1/2", attempt="2")
    # When shard 2 arrives
    _push(runtime, route, _report(tmp_path, "b", {3: "passed"}), run_key=key, shard="2/2")
    [job_id] = first["jobs"]
    assert wait_for_execution(runtime, job_id, timeout=60)["status"] == "SUCCEEDED"
    # Then case 1 is written once: failed when the worst wins, passed when the latest attempt counts
    cases = {c["human_id"]: c["status_name"] for c in _tm_run(runtime)["test_run_cases"]}
    assert cases == {"TC-1": expected, "TC-2": "Passed", "TC-3": "Passed"}
    [bs_run] = _bs_runs(runtime)
    assert sorted(len(c["results"]) for c in bs_run["test_cases"]) == [1, 1, 1]


def test_a_missing_shard_is_reported_after_the_settle_window(runtime: LocalRuntime, tmp_path: Path) -> None:
    # Given shards 1, 2 and 4 of 4 (shard 3's job crashed before it could upload)
    key = f"missing-{uuid.uuid4().hex[:8]}"
    job_ids = {
        _push(runtime, "shards-worst", _report(tmp_path, f"m{i}", {i: "passed"}), run_key=key, shard=f"{i}/4")["jobs"][
            0
        ]
        for i in (1, 2, 4)
    }
    [job_id] = job_ids
    # When no new shard arrives for settle_seconds, the job writes what arrived
    assert wait_for_execution(runtime, job_id, timeout=60)["status"] == "SUCCEEDED"
    assert sorted(c["human_id"] for c in _tm_run(runtime)["test_run_cases"]) == ["TC-1", "TC-2", "TC-4"]
    # Then the job's outcome names the missing shard, and its summary does not read as a clean run
    record = ledger(runtime).get_job(job_id)
    assert record is not None
    assert record["shards"]["missing"] == [3]
    assert record["outcome"] == "error"
    assert record["summary"] == "results not written: shard 3 of 4 never arrived; 3 passed, 0 failed; tm: ok; bs: ok"
    # And shard 3 arriving now is refused with the reason, not silently dropped
    with pytest.raises(PushFailed, match="settle_seconds"):
        _push(runtime, "shards-worst", _report(tmp_path, "m3", {3: "passed"}), run_key=key, shard="3/4")


def test_done_gathers_at_once_through_the_command_line(
    runtime: LocalRuntime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given two reports of a run with no shard count (a CI that does not know it), pushed by the CLI
    key = f"done-{uuid.uuid4().hex[:8]}"
    common = ["--route", "shards-worst", "--url", _base(runtime), "--secret", runtime.webhook_secret, "--json"]
    for n in (1, 2):
        report = _report(tmp_path, f"d{n}", {n: "passed"})
        assert main(["push-junit", str(report), "--run-key", key, *common]) == 0
    capsys.readouterr()
    # When the last CI step says done
    assert main(["push-junit", "--run-key", key, "--done", *common]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["done"], answer["received"]) == (True, 2)
    # Then the job gathers both without waiting for the settle window and writes one run
    [job_id] = answer["jobs"]
    assert wait_for_execution(runtime, job_id, timeout=60)["status"] == "SUCCEEDED"
    assert sorted(c["human_id"] for c in _tm_run(runtime)["test_run_cases"]) == ["TC-1", "TC-2"]
    record = ledger(runtime).get_job(job_id)
    assert record is not None
    assert record["shards"]["reason"] == "the CI said done"


def test_the_same_run_key_cannot_change_its_shard_count(runtime: LocalRuntime, tmp_path: Path) -> None:
    key = f"count-{uuid.uuid4().hex[:8]}"
    first = _push(runtime, "shards-worst", _report(tmp_path, "c1", {1: "passed"}), run_key=key, shard="1/3")
    with pytest.raises(PushFailed, match=r"HTTP 400: run key .* expects 3 shards, this report says 2"):
        _push(runtime, "shards-worst", _report(tmp_path, "c2", {2: "passed"}), run_key=key, shard="2/2")
    push_done("shards-worst", _base(runtime), runtime.webhook_secret, key, None)
    assert wait_for_execution(runtime, first["jobs"][0], timeout=60)["status"] == "SUCCEEDED"
