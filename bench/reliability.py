"""Reliability figures of the relay, one scenario per figure, each bounded and on loopback only.

Prints one table: scenario, what was measured, expected, got, pass/fail, seconds. The stand-ins (moto,
the vendor sandbox, the local HTTP front) are the witnesses; what is measured is the relay's code.

  R1  one delivery x5 (3 concurrent) per CI provider -> 1 Testsigma run, 1 run per target, n rows once
  R4  fuzzed requests to the webhook and report endpoints (real handler, in-process, API Gateway v2
      events) -> 0 5xx other than the documented 503, 0 jobs from unauthenticated requests
  R5  distinct deliveries through the local HTTP front -> all accepted, started and finished once;
      the rate the front took is printed beside the rate asked for
  R6  a full job at DEBUG with every secret set -> 0 log lines containing a secret
  R2  10,000 results written to three targets (BrowserStack bulk, Test Management, Testsigma overrides)
      with a fifth of the vendor calls faulted (throttle, 503, true 500, answer lost after applying,
      connection dropped after applying) -> every result at every target once, job SUCCEEDED
  R3  the write-back worker of each target killed (reported to Step Functions as `Lambda.Unknown`)
      after the vendor applied batch k+1 and before its checkpoint -> the state machine's retry
      resumes at that batch, found applied, not sent again: 0 duplicates, job SUCCEEDED
  R7  a job whose start keeps failing (Step Functions refuses StartExecution) -> in the DLQ after 5
      receives with its reason shown by `redrive`; the cause fixed, redriven -> one execution, done once
  R8  a TriggerPlan that dies between Testsigma's answer and the ledger write, then runs again ->
      1 Testsigma run, for each variant of the (undocumented) run listing, the documented account
      (none) included; and, on that account, the residual case of a plan never triggered before

Run: .venv/bin/python bench/reliability.py [--only R1,R4] [--quick] [--seed N]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from botocore.exceptions import ClientError  # noqa: E402

from testrelay.aws.ledger import Ledger  # noqa: E402
from testrelay.aws.queue import send_jobs  # noqa: E402
from testrelay.models.job import Job  # noqa: E402
from testrelay.observability import logger as relay_logger  # noqa: E402
from testrelay_cli.operations import redrive  # noqa: E402
from testrelay_cli.stack_target import StackTarget  # noqa: E402
from testrelay_local import reconciliation  # noqa: E402
from testrelay_local.apigw import http_api_event  # noqa: E402
from testrelay_local.functions import load_handler  # noqa: E402
from testrelay_local.reconciliation import (  # noqa: E402
    BS_BULK,
    BS_LIST_RESULTS,
    OVERRIDE,
    TM_LIST_CASES,
    TM_UPDATE,
    calls,
    deliver,
    fault_rules,
    not_executed,
)
from testrelay_local.runtime import LocalRuntime  # noqa: E402
from testrelay_local.samples import FakeLambdaContext, delivery, demo_job  # noqa: E402
from testrelay_local.signing import (  # noqa: E402
    basic_auth_headers,
    bitbucket_headers,
    circleci_headers,
    generic_headers,
    github_headers,
    provider_headers,
)

EVENTS = ROOT / "events"
GITHUB_PAYLOAD = (EVENTS / "github" / "workflow_run.completed.payload.json").read_bytes()
DEMO_CASES = 6
DOCUMENTED_STATUSES = {200, 202, 400, 401, 404, 413, 415, 503}
LISTING_VARIANTS = ("filtered", "unfiltered", "absent")


RUNTIME_ENV = {"reconcile": reconciliation.ENVIRONMENT}


@dataclass
class Row:
    scenario: str
    measured: str
    expected: str
    got: str
    ok: bool
    seconds: float


@dataclass
class Bench:
    """Scenarios share local runtimes (one per routes file and run duration), started when first asked."""

    quick: bool = False
    _runtimes: dict[tuple[str, float, str], LocalRuntime] = field(default_factory=dict)
    _active: tuple[str, float, str] | None = None
    _tmp: tempfile.TemporaryDirectory[str] = field(default_factory=tempfile.TemporaryDirectory)
    _saved_env: dict[str, str | None] = field(default_factory=dict)

    def runtime(self, routes: str = "default", run_duration: float = 0.2, log_level: str = "WARNING") -> LocalRuntime:
        """One local runtime at a time (they share this process's environment)."""
        key = (routes, run_duration, log_level)
        if self._active != key:
            self.close()
            routes_file = ROOT / "config" / "routes.yaml" if routes == "default" else self._routes_file(routes)
            for name, value in RUNTIME_ENV.get(routes, {}).items():
                self._saved_env.setdefault(name, os.environ.get(name))
                os.environ[name] = value
            runtime = LocalRuntime(
                routes_file=routes_file, time_scale=0.0, sandbox_run_duration=run_duration, log_level=log_level
            )
            runtime.start()
            self._runtimes[key] = runtime
            self._active = key
        runtime = self._runtimes[key]
        assert runtime.sandbox is not None
        runtime.sandbox.reset()
        return runtime

    def _routes_file(self, name: str) -> Path:
        path = Path(self._tmp.name) / f"{name}.yaml"
        if name == "reconcile":
            path.write_text(reconciliation.ROUTES)
        elif name == "every-ci":
            github = yaml.safe_load((ROOT / "config" / "routes.yaml").read_text())["routes"]
            others = yaml.safe_load((ROOT / "tests" / "e2e" / "ci_routes.yaml").read_text())["routes"]
            for route in github + others:
                route["polling"] = {"first_wait_seconds": 0, "max_wait_seconds": 1, "deadline_seconds": 600}
            path.write_text(yaml.safe_dump({"version": 1, "routes": github + others}))
        else:
            raise ValueError(name)
        return path

    def close(self) -> None:
        for runtime in self._runtimes.values():
            runtime.stop()
        self._runtimes.clear()
        self._active = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()


@contextmanager
def timed() -> Iterator[Callable[[], float]]:
    started = time.perf_counter()
    yield lambda: time.perf_counter() - started


# ------------------------------------------------------------------ helpers on the local runtime


def _executions(runtime: LocalRuntime) -> list[dict[str, Any]]:
    sfn = runtime.aws.client("stepfunctions")
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"stateMachineArn": runtime.outputs["StateMachineArn"], "maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        page = sfn.list_executions(**kwargs)
        found += page["executions"]
        token = page.get("nextToken")
        if not token:
            return found


def _wait_finished(runtime: LocalRuntime, names: set[str], timeout: float) -> dict[str, str]:
    """Status of each named execution once all are terminal (or the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = {e["name"]: e["status"] for e in _executions(runtime) if e["name"] in names}
        if (len(statuses) == len(names) and "RUNNING" not in statuses.values()) or time.monotonic() > deadline:
            return statuses
        time.sleep(0.2)


def _testsigma_runs(runtime: LocalRuntime) -> list[dict[str, Any]]:
    assert runtime.sandbox is not None
    return list(runtime.sandbox.state()["testsigma"]["runs"].values())


def _runs_of(runtime: LocalRuntime, job_id: str) -> list[dict[str, Any]]:
    """The Testsigma runs carrying the job's marker (every run the relay starts has it)."""
    return [run for run in _testsigma_runs(runtime) if f"testrelay {job_id}]" in (run.get("buildNo") or "")]


def _tm_runs(runtime: LocalRuntime) -> list[dict[str, Any]]:
    assert runtime.sandbox is not None
    projects = runtime.sandbox.state()["testsigma_tm"]["projects"]
    return [run for project in projects.values() for run in project.get("test_runs", {}).values()]


def _sent(provider: str, secret: str) -> tuple[bytes, dict[str, str]]:
    """One delivery of the provider's published payload, authenticated as that CI does it."""
    if provider == "github":
        return GITHUB_PAYLOAD, github_headers(secret, GITHUB_PAYLOAD, "workflow_run", str(uuid.uuid4()))
    if provider == "generic":
        body = json.dumps(
            {
                "repository": "acme/shop",
                "outcome": "success",
                "branch": "main",
                "commit_sha": "0123456789abcdef0123456789abcdef01234567",
                "pipeline_name": "nightly",
                "run_url": "https://ci.acme.example/runs/77",
                "delivery_id": f"acme-{uuid.uuid4()}",
            }
        ).encode()
        return body, generic_headers(secret, body)
    name = {
        "gitlab": "pipeline",
        "circleci": "workflow-completed",
        "jenkins": "notification-completed",
        "azure-devops": "build.complete",
        "bitbucket": "repo-commit_status_updated",
    }[provider]
    fixture = delivery(provider, name)
    headers = dict(fixture.headers)
    if provider == "gitlab":
        headers["x-gitlab-token"] = secret
    elif provider == "circleci":
        headers["circleci-signature"] = circleci_headers(secret, fixture.body)["circleci-signature"]
    elif provider == "bitbucket":
        headers["x-hub-signature"] = bitbucket_headers(secret, fixture.body)["X-Hub-Signature"]
    else:
        headers["authorization"] = basic_auth_headers(secret)["Authorization"]
    return fixture.body, headers


# ------------------------------------------------------------------ R1


R1_PROVIDERS = ("github", "gitlab", "circleci", "jenkins", "azure-devops", "bitbucket", "generic")


def r1_redelivered(bench: Bench, providers: tuple[str, ...] = R1_PROVIDERS) -> list[Row]:
    """One delivery sent 5 times, 3 at once, per provider: one job, one Testsigma run, one TM run, each row once."""
    rows: list[Row] = []
    runtime = bench.runtime("every-ci")
    for provider in providers:
        assert runtime.sandbox is not None
        runtime.sandbox.reset()
        with timed() as elapsed:
            body, headers = _sent(provider, runtime.webhook_secret)
            url = runtime.webhook_url(provider)

            def post(_: int, url: str = url, body: bytes = body, headers: dict[str, str] = headers) -> Any:
                return requests.post(url, data=body, headers=headers, timeout=30)

            with ThreadPoolExecutor(3) as pool:
                answers = list(pool.map(post, range(5)))
            jobs = {job for answer in answers if answer.status_code == 202 for job in answer.json().get("jobs", [])}
            statuses = _wait_finished(runtime, jobs, timeout=60)
            time.sleep(0.3)  # anything started twice would show by now
            ts_runs = _testsigma_runs(runtime)
            tm_runs = _tm_runs(runtime)
            rows_written = sum(len(run["test_run_cases"]) for run in tm_runs)
            updates = [case["update_count"] for run in tm_runs for case in run["test_run_cases"]]
        got = (
            f"{sum(a.status_code == 202 for a in answers)}x202, {len(jobs)} job "
            f"{'/'.join(sorted(set(statuses.values()))) or '-'}, {len(ts_runs)} TS run, {len(tm_runs)} TM run, "
            f"{rows_written} rows, max {max(updates, default=0)} write/row"
        )
        ok = (
            all(a.status_code == 202 for a in answers)
            and len(jobs) == 1
            and set(statuses.values()) == {"SUCCEEDED"}
            and len(ts_runs) == 1
            and len(tm_runs) == 1
            and rows_written == DEMO_CASES
            and set(updates) == {1}
        )
        rows.append(
            Row(
                f"R1 {provider}",
                "1 delivery x5 (3 concurrent)",
                f"5x202, 1 job SUCCEEDED, 1 TS run, 1 TM run, {DEMO_CASES} rows, 1 write/row",
                got,
                ok,
                elapsed(),
            )
        )
    return rows


# ------------------------------------------------------------------ R2 and R3: write-back at every target kind


def _reconcile_runtime(bench: Bench, cases: int, rules: list[dict[str, Any]]) -> LocalRuntime:
    runtime = bench.runtime("reconcile", run_duration=0.0)
    reconciliation.prepare(runtime, cases, True, rules)
    return runtime


@dataclass
class Held:
    """Per target: cases written exactly once with the right status, written more than once, missing or wrong."""

    once: int
    duplicated: int
    missing: int


def _held(runtime: LocalRuntime, cases: int) -> dict[str, Held]:
    assert runtime.sandbox is not None
    state = runtime.sandbox.state()
    expected = {f"TC-{n}": reconciliation.RESULTS[n % 3] for n in range(1, cases + 1)}
    held: dict[str, Held] = {}
    bs_runs = list(state["browserstack_tm"]["projects"][reconciliation.BS_PROJECT].get("test_runs", {}).values())
    bs = {c["identifier"]: [r["status"] for r in c["results"]] for run in bs_runs for c in run["test_cases"]}
    held["bs"] = Held(
        sum(bs.get(case) == [reconciliation.BS_STATUS[r]] for case, r in expected.items()),
        sum(len(bs.get(case, [])) > 1 for case in expected),
        sum(not bs.get(case) or reconciliation.BS_STATUS[r] not in bs[case] for case, r in expected.items()),
    )
    tm_runs = list(state["testsigma_tm"]["projects"][reconciliation.TM_PROJECT].get("test_runs", {}).values())
    tm = {c["human_id"]: (c["status_name"], c["update_count"]) for run in tm_runs for c in run["test_run_cases"]}
    held["tm"] = Held(
        sum(tm.get(case) == (reconciliation.TM_STATUS[r], 1) for case, r in expected.items()),
        sum(tm.get(case, ("", 0))[1] > 1 for case in expected),
        sum(tm.get(case, ("", 0))[0] != reconciliation.TM_STATUS[r] for case, r in expected.items()),
    )
    overridden = [
        (c["testCaseId"], [o["result"] for o in c["overrides"]])
        for run in state["testsigma"]["runs"].values()
        for c in run["cases"]
    ]
    wanted = {10_000 + n for n in range(1, cases + 1) if reconciliation.RESULTS[n % 3] == "NOT_EXECUTED"}
    by_case = dict(overridden)
    held["overrides"] = Held(
        sum(by_case.get(case) == ["FAILURE"] for case in wanted),
        sum(len(by_case.get(case, [])) > 1 for case in wanted) + sum(bool(o) for c, o in overridden if c not in wanted),
        sum(not by_case.get(case) for case in wanted),
    )
    held["runs"] = Held(len(bs_runs) + len(tm_runs), 0, 0)  # one per target kind expected
    return held


def _expected_once(cases: int) -> dict[str, int]:
    return {"bs": cases, "tm": cases, "overrides": not_executed(cases)}


def _held_ok(held: dict[str, Held], cases: int) -> bool:
    once = _expected_once(cases)
    return held["runs"].once == 2 and all(
        (held[t].once, held[t].duplicated, held[t].missing) == (once[t], 0, 0) for t in once
    )


def _held_text(held: dict[str, Held]) -> str:
    return "; ".join(
        f"{target} {h.once} once, {h.duplicated} dup, {h.missing} missing"
        for target, h in held.items()
        if target != "runs"
    )


R2_KINDS = ("throttle", "server_error", "internal_error", "lost_answer", "lost_connection")


def _execution_errors(runtime: LocalRuntime, name: str) -> list[str]:
    """The errors the execution's history holds (a task's failure, before its Retry or Catch)."""
    sfn = runtime.aws.client("stepfunctions")
    arn = runtime.execution_arn(name)
    errors: list[str] = []
    token: str | None = None
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **({"nextToken": token} if token else {}))
        for event in page["events"]:
            if event["type"].endswith("Failed"):
                details: Any = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
                if isinstance(details, dict) and details.get("error"):
                    errors.append(str(details["error"]))
        token = page.get("nextToken")
        if not token:
            return errors


def r2_faulted_write_back(bench: Bench, cases: int = 10_000, share: float = 0.2, seed: int = 2) -> list[Row]:
    """A fifth of every vendor call the write-back makes faulted, five kinds in equal shares (the
    Testsigma trigger and polling are left alone: only its override call is faulted)."""
    rules = fault_rules(R2_KINDS, share, seed)
    runtime = _reconcile_runtime(bench, cases, rules)
    with timed() as elapsed:
        job_id = deliver(runtime)
        status = _wait_finished(runtime, {job_id}, timeout=max(600.0, cases * 0.2)).get(job_id, "NOT_STARTED")
        held = _held(runtime, cases)
    record = Ledger(runtime.outputs["LedgerTableName"]).get_job(job_id) or {}
    unwritten = "".join(
        f"; {t.get('target')} {t.get('status')} at {t.get('written')}: {t.get('error')} {str(t.get('cause'))[:160]!r}"
        for t in record.get("targets") or []
        if t.get("status") != "written"
    )
    assert runtime.sandbox is not None
    injected = runtime.sandbox.state()["faults"]["injected"]
    faulted = ", ".join(f"{kind} {injected.get(kind, 0)}" for kind in R2_KINDS)
    ok = status == "SUCCEEDED" and _held_ok(held, cases) and set(injected) == set(R2_KINDS)
    once = _expected_once(cases)
    return [
        Row(
            f"R2 seed {seed}",
            f"{cases} results to BrowserStack (bulk) + Test Management + Testsigma overrides, "
            f"{share:.0%} of vendor write-back calls faulted ({faulted})",
            f"job SUCCEEDED; bs {once['bs']}, tm {once['tm']}, overrides {once['overrides']} once; 0 dup, 0 missing",
            f"job {status}; {_held_text(held)}; {held['runs'].once} target runs{unwritten}",
            ok,
            elapsed(),
        )
    ]


def _named_error(name: str) -> type[Exception]:
    """An exception the local Lambda reports with `name` as its errorType, as the Lambda service reports
    a function it killed (time-out, out of memory): `Lambda.Unknown`, `Sandbox.Timedout`, ..."""
    return type(name, (Exception,), {})


def r3_killed_worker(bench: Bench, cases: int = 200, k: int = 3, error: str = "Lambda.Unknown") -> list[Row]:
    """Each target's write-back worker dies once, after the vendor applied batch k+1 and before its
    checkpoint is saved (the `batch_applied_hook` seam). The failure reaches Step Functions as `error`;
    the state machine's own Retry invokes the worker again."""
    from testrelay.relay.writers import common

    runtime = _reconcile_runtime(bench, cases, [])
    killed = _named_error(error)
    lock = threading.Lock()
    confirmed: dict[str, int] = {}
    died_at: dict[str, int] = {}
    after: dict[str, list[int]] = {}

    def die_after_k(target: str, position: int) -> None:
        with lock:
            if target in died_at:
                after.setdefault(target, []).append(position)
                return
            confirmed[target] = confirmed.get(target, 0) + 1
            if confirmed[target] == k + 1:  # the vendor applied batch k+1: the worker dies before saving it
                died_at[target] = position
                raise killed(f"{target}: worker killed after the vendor applied the batch up to {position}")

    previous = common.batch_applied_hook
    common.batch_applied_hook = die_after_k
    try:
        with timed() as elapsed:
            job_id = deliver(runtime)
            status = _wait_finished(runtime, {job_id}, timeout=180).get(job_id, "NOT_STARTED")
    finally:
        common.batch_applied_hook = previous
    held = _held(runtime, cases)
    errors = _execution_errors(runtime, job_id)
    once = _expected_once(cases)
    sends = {
        "bs": calls(runtime, "browserstack_tm", BS_BULK),
        "tm": calls(runtime, "testsigma_tm", TM_UPDATE),
        "overrides": calls(runtime, "testsigma", OVERRIDE),
    }
    batches = {"bs": -(-once["bs"] // 20), "tm": -(-once["tm"] // 20), "overrides": -(-once["overrides"] // 5)}
    read_backs = calls(runtime, "browserstack_tm", BS_LIST_RESULTS) + calls(runtime, "testsigma_tm", TM_LIST_CASES)
    # Batches complete in any order with several in flight, so the retry's starting point is the lowest
    # position it confirms, not the first; `written` is saved at most once a second: the retry resumes at
    # or before the batch it died on and confirms that batch again (found applied: sends = batches),
    # never past it.
    resumed: dict[str, int | None] = {target: min(after.get(target, []), default=None) for target in died_at}
    found_again = all(died_at[t] in after.get(t, []) and (resumed[t] or 0) <= died_at[t] for t in died_at)
    ok = (
        status == "SUCCEEDED"
        and set(died_at) == {"bs", "tm", "overrides"}
        and found_again
        and sends == batches
        and errors.count(error) == 3
        and _held_ok(held, cases)
    )
    died = ", ".join(f"{t} at {died_at.get(t)} -> resumed at {resumed.get(t)}" for t in ("bs", "tm", "overrides"))
    return [
        Row(
            "R3",
            f"{cases} results, 3 targets; each worker killed ({error}) after the vendor applied batch {k + 1}, "
            "before its checkpoint; the state machine's Retry runs it again",
            f"job SUCCEEDED, {error} x3 in the history, each resumed at or before the batch it died on and "
            "confirmed it again (found applied), "
            f"sends = batches {batches}, 0 dup, 0 missing",
            f"job {status}, {errors.count(error)}x {error}; {died}; sends {sends}, {read_backs} read-backs; "
            f"{_held_text(held)}",
            ok,
            elapsed(),
        )
    ]


# ------------------------------------------------------------------ R4


_AUTH_HEADERS = (
    "x-hub-signature-256",
    "x-hub-signature",
    "x-gitlab-token",
    "circleci-signature",
    "authorization",
    "x-testrelay-token",
    "x-testrelay-signature",
)
_OTHER_HEADERS = (
    "content-type",
    "x-github-event",
    "x-github-delivery",
    "x-gitlab-event",
    "circleci-event-type",
    "x-event-key",
    "x-request-uuid",
)
_PROVIDERS = ("github", "gitlab", "circleci", "jenkins", "azure-devops", "bitbucket", "generic")
_ODD_VALUES: tuple[Any, ...] = (None, True, 0, -1, 2**70, 1.5, "", "main-\ud800", [], {}, "x" * 5000, [[[]]])


def _published() -> list[bytes]:
    bodies = [path.read_bytes() for path in sorted((EVENTS / "github").glob("*.payload.json"))]
    for provider in ("gitlab", "circleci", "jenkins", "azure-devops", "bitbucket"):
        bodies += [
            path.read_bytes()
            for path in sorted((EVENTS / provider).glob("*.json"))
            if not path.name.endswith(".headers.json")
        ]
    return bodies


def _mutate(rng: random.Random, body: bytes) -> bytes:
    choice = rng.random()
    if choice < 0.15:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    if choice < 0.3:
        cut = rng.randint(0, len(body))
        return body[:cut]
    if choice < 0.4:
        return b"<testsuites><testsuite name='x'><testcase name='" + body[:50] + b"'/></testsuite></testsuites>"
    try:
        document = json.loads(body)
    except ValueError:
        return body
    node = document
    for _ in range(rng.randint(0, 3)):
        if isinstance(node, dict) and node:
            key = rng.choice(list(node))
            if isinstance(node[key], dict | list) and rng.random() < 0.6:
                node = node[key]
                continue
            node[key] = rng.choice(_ODD_VALUES)
            break
    return json.dumps(document, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")


def _fuzzed_request(rng: random.Random, bodies: list[bytes]) -> tuple[str, dict[str, str], bytes, str]:
    if rng.random() < 0.7:
        provider = rng.choice(_PROVIDERS) if rng.random() < 0.95 else "".join(rng.choices("abz-_.%", k=6))
        path = f"/webhooks/{provider}"
    else:
        route = rng.choice(("octo-checkout", "nope", "a" * 60))
        path = f"/reports/junit/{route}" + rng.choice(("", "/uploads", "/uploads/" + "0" * 32, "/uploads/zz"))
    headers = {
        name: "".join(rng.choices("abcdef0123456789=", k=rng.randint(0, 70)))
        for name in _AUTH_HEADERS
        if rng.random() < 0.3
    }
    if "authorization" in headers and rng.random() < 0.5:
        headers["authorization"] = "Basic " + headers["authorization"]
    for name in _OTHER_HEADERS:
        if rng.random() < 0.4:
            headers[name] = rng.choice(
                ("workflow_run", "Pipeline Hook", "application/json", "application/xml", "x" * 90, "")
            )
    query = rng.choice(("", "", "run_id=1", "run_id=abc&x=" + "y" * 300))
    return path, headers, _mutate(rng, rng.choice(bodies)), query


def r4_fuzz(bench: Bench, requests_count: int = 10_000, seed: int = 4, signed_share: float = 0.3) -> list[Row]:
    """Fuzz through the real webhook handler (in-process: the HTTP front would spend its time in the
    stand-in's socket code, not in the relay). A `signed_share` of the webhook requests is signed
    correctly (so the mutated body reaches parsing, normalising and routing); every job that appears
    must be one answered to a signed request: the others are unauthenticated."""
    runtime = bench.runtime()
    handler = load_handler("functions/webhook")
    rng = random.Random(seed)
    bodies = _published()
    sqs = runtime.aws.client("sqs")
    s3 = runtime.aws.client("s3")
    queue = runtime.outputs["JobsQueueUrl"]
    bucket = runtime.outputs.get("ResultsBucketName", "")

    def stored() -> int:
        """Reports kept (`reports/`, the webhook function's only prefix; jobs' write plans live elsewhere)."""
        return int(s3.list_objects_v2(Bucket=bucket, Prefix="reports/").get("KeyCount", 0)) if bucket else 0

    before_names, before_stored = [e["name"] for e in _executions(runtime)], stored()
    statuses: dict[int, int] = {}
    unexpected: list[str] = []
    signed_jobs: set[str] = set()
    signed_count = 0
    level = relay_logger.log_level
    relay_logger.setLevel("ERROR")  # one "webhook rejected" line per request would cost more than the handler
    with timed() as elapsed:
        for _ in range(requests_count):
            path, headers, body, query = _fuzzed_request(rng, bodies)
            provider = path.removeprefix("/webhooks/")
            signed = path.startswith("/webhooks/") and provider in _PROVIDERS and rng.random() < signed_share
            if signed:
                auth = provider_headers(provider, runtime.webhook_secret, body, delivery=str(rng.getrandbits(64)))
                headers = {k: v for k, v in headers.items() if k not in _AUTH_HEADERS}
                headers.update({k.lower(): v for k, v in auth.items()})
            answer = handler(http_api_event("POST", path, headers, body, query), FakeLambdaContext())
            status = int(answer["statusCode"])
            if signed:
                signed_count += 1
                if status == 202:
                    signed_jobs.update(json.loads(answer["body"]).get("jobs", []))
            statuses[status] = statuses.get(status, 0) + 1
            if status >= 500 and status != 503 and len(unexpected) < 3:
                unexpected.append(f"{status} {path}: {str(answer.get('body'))[:120]}")
        relay_logger.setLevel(level)
        before = set(before_names)
        deadline = time.monotonic() + 30
        while True:  # until the queue poller has started whatever was queued
            attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
            queued = int(attributes["ApproximateNumberOfMessages"]) + int(
                attributes["ApproximateNumberOfMessagesNotVisible"]
            )
            if queued == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        started = {e["name"] for e in _executions(runtime)} - before
        from_unauthenticated = len(started - signed_jobs) + queued + stored() - before_stored
    five_xx = sum(count for status, count in statuses.items() if status >= 500 and status != 503)
    spread = ", ".join(f"{status}:{count}" for status, count in sorted(statuses.items()))
    for line in unexpected:
        print("R4 unexpected:", line, file=sys.stderr)
    return [
        Row(
            "R4",
            f"{requests_count} fuzzed requests to webhooks + reports, {signed_count} of them signed "
            "(real handler in-process with API Gateway v2 events, not the HTTP front)",
            "0 5xx (503 documented), 0 jobs from unauthenticated requests",
            f"{five_xx} 5xx, {from_unauthenticated} jobs from unauthenticated, {len(started & signed_jobs)} from "
            f"signed ({spread})",
            five_xx == 0 and from_unauthenticated == 0,
            elapsed(),
        )
    ]


# ------------------------------------------------------------------ R5


def r5_burst(
    bench: Bench, deliveries: int = 1_000, window: float = 10.0, finish_timeout: float = 900, senders: int = 4
) -> list[Row]:
    """Distinct GitHub deliveries at `deliveries / window` per second through the local HTTP front, from
    `senders` connections (more overflow the front's listen backlog of 5: connection resets, counted)."""
    runtime = bench.runtime("default", run_duration=0.0)
    url = runtime.webhook_url("github")
    secret = runtime.webhook_secret
    session_local = threading.local()

    def send(index: int) -> tuple[int, list[str]]:
        session = getattr(session_local, "session", None) or requests.Session()
        session_local.session = session
        due = started + index * window / deliveries
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        headers = github_headers(secret, GITHUB_PAYLOAD, "workflow_run", str(uuid.uuid4()))
        try:
            answer = session.post(url, data=GITHUB_PAYLOAD, headers=headers, timeout=60)
        except requests.ConnectionError:
            return 0, []  # the local front's listen backlog overflowed (not the relay's answer)
        return answer.status_code, list(answer.json().get("jobs", [])) if answer.status_code == 202 else []

    with timed() as elapsed:
        started = time.perf_counter()
        with ThreadPoolExecutor(senders) as pool:
            answers = list(pool.map(send, range(deliveries)))
        sent_in = time.perf_counter() - started
        jobs = {job for _, ids in answers for job in ids}
        statuses = _wait_finished(runtime, jobs, timeout=finish_timeout)
        time.sleep(0.5)
        executions = [e for e in _executions(runtime) if e["name"] in jobs]
        runs = _testsigma_runs(runtime)
        by_job: dict[str, int] = {}
        for run in runs:
            build = run.get("buildNo") or ""
            if "[testrelay " in build:
                job = build.rsplit("[testrelay ", 1)[1].rstrip("]")
                by_job[job] = by_job.get(job, 0) + 1
    accepted = sum(status == 202 for status, _ in answers)
    reset = sum(status == 0 for status, _ in answers)
    succeeded = sum(status == "SUCCEEDED" for status in statuses.values())
    rate_asked, rate_taken = deliveries / window, deliveries / sent_in
    ok = (
        accepted == deliveries
        and len(jobs) == deliveries
        and len(executions) == deliveries
        and succeeded == deliveries
        and len(runs) == deliveries
        and set(by_job.values()) <= {1}
        and len(by_job) == deliveries
    )
    return [
        Row(
            "R5",
            f"{deliveries} distinct deliveries at {rate_asked:.0f}/s via the local HTTP front "
            f"(it took {rate_taken:.0f}/s: sent in {sent_in:.1f}s)",
            f"{deliveries} accepted, started, SUCCEEDED; {deliveries} TS runs, 1 per job",
            f"{accepted} accepted ({reset} reset by the front), {len(executions)} started, {succeeded} SUCCEEDED; "
            f"{len(runs)} TS runs, "
            f"max {max(by_job.values(), default=0)} per job",
            ok,
            elapsed(),
        )
    ]


# ------------------------------------------------------------------ R6


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.lock_lines = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a record that cannot be formatted still counts, raw
            text = f"{record.msg!r} {record.args!r}"
        with self.lock_lines:
            self.lines.extend(text.splitlines() or [""])


_STAND_IN_LOGGERS = ("werkzeug", "moto", "testrelay_local")


def _secrets(runtime: LocalRuntime) -> list[str]:
    """Every secret the stack holds: the webhook secrets and the vendor credentials (as stored)."""
    secrets = runtime.aws.client("secretsmanager")
    values: set[str] = set()
    for output in ("WebhookSecretsArn", "VendorCredentialsArn"):
        stored = json.loads(secrets.get_secret_value(SecretId=runtime.outputs[output])["SecretString"])
        values |= {str(value) for value in stored.values()}
    return sorted(value for value in values if len(value) >= 6)


def r6_debug_logs(bench: Bench) -> list[Row]:
    """A whole job (webhook → trigger → poll → write-back → commit status) with every logger at DEBUG."""
    runtime = bench.runtime("default", run_duration=0.0, log_level="DEBUG")
    secrets = _secrets(runtime)
    root = logging.getLogger()
    relay = logging.getLogger(relay_logger.name)
    plain, structured = _Capture(), _Capture()
    plain.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    structured.setFormatter(relay_logger.registered_formatter)
    previous_level = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(plain)
    relay.addHandler(structured)
    stdout, sys.stdout = sys.stdout, io.StringIO()  # Powertools' own handler writes here
    try:
        with timed() as elapsed:
            headers = github_headers(runtime.webhook_secret, GITHUB_PAYLOAD, "workflow_run", str(uuid.uuid4()))
            answer = requests.post(runtime.webhook_url("github"), data=GITHUB_PAYLOAD, headers=headers, timeout=30)
            jobs = set(answer.json().get("jobs", []))
            statuses = _wait_finished(runtime, jobs, timeout=60)
    finally:
        printed = sys.stdout.getvalue().splitlines() if isinstance(sys.stdout, io.StringIO) else []
        sys.stdout = stdout
        root.removeHandler(plain)
        relay.removeHandler(structured)
        root.setLevel(previous_level)
    relay_lines = [line for line in plain.lines if not line.startswith(_STAND_IN_LOGGERS)]
    lines = relay_lines + structured.lines + printed
    leaking = [line for line in lines if any(secret in line for secret in secrets)]
    for line in leaking[:3]:
        print("R6 leak:", line[:200], file=sys.stderr)
    ok = set(statuses.values()) == {"SUCCEEDED"} and bool(lines) and not leaking
    return [
        Row(
            "R6",
            f"1 full job at DEBUG, {len(secrets)} secrets set; {len(lines)} relay/SDK log lines "
            f"(the stand-ins' own loggers {', '.join(_STAND_IN_LOGGERS)} left out)",
            "job SUCCEEDED, 0 lines with a secret",
            f"job {'/'.join(sorted(set(statuses.values()))) or '-'}, {len(leaking)} lines with a secret",
            ok,
            elapsed(),
        )
    ]


# ------------------------------------------------------------------ R7


class _StartRefused:
    """StartExecution refused for one job while `broken` (an IAM policy missing `states:StartExecution`,
    say); every other call goes through."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.broken = True
        self.refused = 0

    @contextmanager
    def installed(self) -> Iterator[None]:
        from testrelay.relay import dispatch as dispatch_module

        original = dispatch_module.start_once  # type: ignore[attr-defined]

        def start_once(state_machine_arn: str, name: str, payload: dict[str, Any]) -> bool:
            if self.broken and name.startswith(self.job_id):
                self.refused += 1
                raise ClientError(
                    {
                        "Error": {
                            "Code": "AccessDeniedException",
                            "Message": "not authorized to perform: states:StartExecution",
                        }
                    },
                    "StartExecution",
                )
            return original(state_machine_arn, name, payload)

        dispatch_module.start_once = start_once  # type: ignore[attr-defined]
        try:
            yield
        finally:
            dispatch_module.start_once = original  # type: ignore[attr-defined]


def _queued(runtime: LocalRuntime, queue: str) -> int:
    attributes = runtime.aws.client("sqs").get_queue_attributes(QueueUrl=runtime.outputs[queue], AttributeNames=["All"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"]) + int(
        attributes["Attributes"]["ApproximateNumberOfMessagesNotVisible"]
    )


def r7_poison_redrive(bench: Bench, visibility: int = 1) -> list[Row]:
    """A job whose start fails on every receive: SQS moves it to the DLQ after maxReceiveCount (5), the
    ledger keeps the reason and `redrive` shows it; the cause fixed, the message is redriven and the
    job runs once. The jobs queue's visibility time-out (200 s in the template) is set to `visibility`
    for the scenario, so the five receives take seconds."""
    runtime = bench.runtime("default", run_duration=0.0)
    sqs = runtime.aws.client("sqs")
    queue = runtime.outputs["JobsQueueUrl"]
    target = StackTarget(outputs=runtime.outputs, endpoint_url=runtime.aws.endpoint_url, region="us-east-1")
    job = demo_job(delivery=str(uuid.uuid4()))
    refused = _StartRefused(job.id)
    previous = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["VisibilityTimeout"])["Attributes"]
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": str(visibility)})
    time.sleep(1.5)  # a receive already waiting (the poller's 1 s long poll) would still use the old time-out
    ledger = Ledger(runtime.outputs["LedgerTableName"])
    try:
        with timed() as elapsed, refused.installed():
            send_jobs(queue, [job])
            deadline = time.monotonic() + 60
            while _queued(runtime, "JobsDlqUrl") == 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            in_dlq = _queued(runtime, "JobsDlqUrl")
            record = ledger.get_job(job.id) or {}
            listed = redrive(target, dry_run=True)
            reason = next((m.reason for m in listed if m.job_id == job.id), "")
            refused.broken = False  # the cause fixed
            moved = redrive(target)
            status = _wait_finished(runtime, {job.id}, timeout=60).get(job.id, "NOT_STARTED")
            time.sleep(1.0)  # anything started twice would show by now
    finally:
        sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": previous["VisibilityTimeout"]})
    executions = [e["name"] for e in _executions(runtime) if e["name"].startswith(job.id)]
    ts_runs = _runs_of(runtime, job.id)
    tm_runs = _tm_runs(runtime)
    updates = [case["update_count"] for run in tm_runs for case in run["test_run_cases"]]
    after = ledger.get_job(job.id) or {}
    left = _queued(runtime, "JobsDlqUrl") + _queued(runtime, "JobsQueueUrl")
    ok = (
        in_dlq == 1
        and refused.refused == 5
        and record.get("state") == "dispatch_failed"
        and "AccessDeniedException" in reason
        and [m.job_id for m in moved] == [job.id]
        and status == "SUCCEEDED"
        and executions == [job.id]
        and len(ts_runs) == 1
        and len(tm_runs) == 1
        and len(updates) == DEMO_CASES
        and set(updates) == {1}
        and after.get("state") == "reported"
        and left == 0
    )
    return [
        Row(
            "R7",
            "a job whose StartExecution is refused on every receive (queue visibility time-out "
            f"{visibility} s); then fixed and redriven",
            "in the DLQ after 5 receives, ledger dispatch_failed, `redrive` shows the reason; redriven: "
            f"1 execution SUCCEEDED, 1 TS run, 1 TM run, {DEMO_CASES} rows once, queues empty",
            f"{in_dlq} in DLQ after {refused.refused} refused starts, ledger {record.get('state')}, "
            f"reason {reason[:90]!r}; moved {len(moved)}: {len(executions)} execution {status}, "
            f"{len(ts_runs)} TS run, {len(tm_runs)} TM run, {len(updates)} rows, max {max(updates, default=0)} "
            f"write/row, ledger {after.get('state')}, {left} left queued",
            ok,
            elapsed(),
        )
    ]


# ------------------------------------------------------------------ R8


class _Crash(BaseException):
    """The process dies: nothing below the raise runs, nothing catches it (not an Exception)."""


@contextmanager
def crash_before_ledger_write() -> Iterator[None]:
    """The first `claim_run` (the ledger write after Testsigma answered the trigger) kills the process."""
    original = Ledger.claim_run
    crashed = threading.Event()

    def dying(self: Ledger, job_id: str, run: dict[str, Any]) -> dict[str, Any]:
        if not crashed.is_set():
            crashed.set()
            raise _Crash(f"process died after Testsigma answered run {run.get('run_id')}")
        return original(self, job_id, run)

    Ledger.claim_run = dying  # type: ignore[method-assign]
    try:
        yield
    finally:
        Ledger.claim_run = original  # type: ignore[method-assign]


def plan_seen(runtime: LocalRuntime, seen: bool) -> None:
    """The demo route's plan as an earlier job left it (`seen`: triggered, the ledger holds its run),
    or as on a new route (the ledger forgets every run of the plan)."""
    from testrelay.relay.run import trigger_plan

    if seen:
        trigger_plan(demo_job(delivery=str(uuid.uuid4())))
        return
    plan_id = demo_job().route.testsigma.test_plan_id
    Ledger(runtime.outputs["LedgerTableName"]).table.delete_item(Key={"pk": f"PLAN#{plan_id}", "sk": "PLAN"})


def crash_after_trigger(
    runtime: LocalRuntime, listing: str, seen_before: bool = True
) -> tuple[list[dict[str, Any]], int | None, int]:
    """Trigger a fresh job's plan with a crash before the ledger write, then again (the retry).
    `seen_before`: an earlier job of the route triggered the plan (as on any route but a new one), so
    the ledger holds a run of the plan to read the plan's latest run from; otherwise the ledger
    forgets the plan first. Answers (the job's Testsigma runs, the run the retry recorded, the runs
    the first attempt started)."""
    from testrelay.relay.run import trigger_plan

    assert runtime.sandbox is not None
    runtime.sandbox.configure(ts_run_listing=listing)
    plan_seen(runtime, seen_before)
    job: Job = demo_job(delivery=str(uuid.uuid4()))
    with crash_before_ledger_write():
        with suppress(_Crash):
            trigger_plan(job)
        first = len(_runs_of(runtime, job.id))
        recorded = trigger_plan(job).run_id
    return _runs_of(runtime, job.id), recorded, first


R8_VARIANTS = (*((listing, True) for listing in LISTING_VARIANTS), ("absent", False))
"""Each run listing variant on a plan an earlier job triggered, and the documented account (no listing)
on a plan the relay never triggered: nothing to read the plan's latest run from."""


def r8_crash_after_trigger(bench: Bench, variants: tuple[tuple[str, bool], ...] = R8_VARIANTS) -> list[Row]:
    runtime = bench.runtime("default", run_duration=0.0)
    rows: list[Row] = []
    for listing, seen_before in variants:
        with timed() as elapsed:
            runs, recorded, first = crash_after_trigger(runtime, listing, seen_before)
        ids = sorted(int(run["id"]) for run in runs)
        if seen_before:
            expected, ok = "1 TS run, the one recorded", ids == [recorded] and first == 1
        else:
            # The residual window: no listing, and no run of the plan seen to read `lastRunId` from.
            expected, ok = "2 TS runs (nothing to look the run up in: logged, triggered again)", len(runs) == 2
        how = "listing" if listing != "absent" else "no listing: the plan's lastRunId"
        how = how if seen_before else "no listing, and no run of the plan seen"
        rows.append(
            Row(
                f"R8 listing={listing}" + ("" if seen_before else ", plan never triggered before"),
                f"TriggerPlan dies after Testsigma's answer, before the ledger write; then retried ({how})",
                expected,
                f"{len(runs)} TS run(s) {ids}, recorded {recorded}",
                ok,
                elapsed(),
            )
        )
    return rows


# ------------------------------------------------------------------ the table


def _full(bench: Bench, seed: int) -> dict[str, Callable[[], list[Row]]]:
    return {
        "R1": lambda: r1_redelivered(bench),
        "R2": lambda: r2_faulted_write_back(bench, seed=seed),
        "R3": lambda: r3_killed_worker(bench),
        "R4": lambda: r4_fuzz(bench),
        "R5": lambda: r5_burst(bench),
        "R6": lambda: r6_debug_logs(bench),
        "R7": lambda: r7_poison_redrive(bench),
        "R8": lambda: r8_crash_after_trigger(bench),
    }


def _quick(bench: Bench, seed: int) -> dict[str, Callable[[], list[Row]]]:
    return {
        "R1": lambda: r1_redelivered(bench, ("github", "gitlab")),
        "R2": lambda: r2_faulted_write_back(bench, cases=1_000, seed=seed),
        "R3": lambda: r3_killed_worker(bench, cases=100, k=2),
        "R4": lambda: r4_fuzz(bench, requests_count=1_000),
        "R5": lambda: r5_burst(bench, deliveries=50, window=2.0, finish_timeout=120),
        "R6": lambda: r6_debug_logs(bench),
        "R7": lambda: r7_poison_redrive(bench),
        "R8": lambda: r8_crash_after_trigger(bench),
    }


SCENARIOS = ("R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8")


def table(rows: list[Row]) -> str:
    header = ("scenario", "measured", "expected", "got", "result", "seconds")
    cells = [header] + [
        (row.scenario, row.measured, row.expected, row.got, "pass" if row.ok else "FAIL", f"{row.seconds:.1f}")
        for row in rows
    ]
    lines = ["| " + " | ".join(cell) + " |" for cell in cells]
    lines.insert(1, "|" + "|".join("---" for _ in header) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated scenarios, e.g. R1,R4")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (make bench)")
    parser.add_argument("--seed", type=int, default=2, help="R2: seeds the fault draws (default 2)")
    args = parser.parse_args(argv)
    chosen = [name.strip().upper() for name in args.only.split(",") if name.strip()] or list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    # Everything but the table goes to stderr: the relay's log lines and metrics, the stand-ins' chatter.
    table_out, sys.stdout = sys.stdout, sys.stderr
    relay_logger.registered_handler.setStream(sys.stderr)  # type: ignore[attr-defined]
    bench = Bench(quick=args.quick)
    scenarios = (_quick if args.quick else _full)(bench, args.seed)
    rows: list[Row] = []
    try:
        for name in chosen:
            rows += scenarios[name]()
    finally:
        bench.close()
    sys.stdout = table_out
    print(table(rows))
    return 0 if all(row.ok for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
