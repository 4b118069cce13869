"""Reliability figures of the relay, one scenario per figure, each bounded and on loopback only.

Prints one table: scenario, what was measured, expected, got, pass/fail, seconds. The stand-ins (moto,
the vendor sandbox, the local HTTP front) are the witnesses; what is measured is the relay's code.

  R1  one delivery x5 (3 concurrent) per CI provider -> 1 Testsigma run, 1 run per target, n rows once
  R4  fuzzed requests to the webhook and report endpoints (real handler, in-process, API Gateway v2
      events) -> 0 5xx other than the documented 503, 0 jobs from unauthenticated requests
  R5  distinct deliveries through the local HTTP front -> all accepted, started and finished once;
      the rate the front took is printed beside the rate asked for
  R6  a full job at DEBUG with every secret set -> 0 log lines containing a secret
  R8  a TriggerPlan that dies between Testsigma's answer and the ledger write, then runs again ->
      1 Testsigma run, for each variant of the (undocumented) run listing

R2, R3 and R7 need the writers' reconciliation, the sandbox's worker faults and `testrelay retry`:
each is one more scenario function (taking the Bench, answering its rows) named in SCENARIOS, _full and _quick.

Run: .venv/bin/python bench/reliability.py [--only R1,R4] [--quick]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
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

from testrelay.aws.ledger import Ledger  # noqa: E402
from testrelay.models.job import Job  # noqa: E402
from testrelay.observability import logger as relay_logger  # noqa: E402
from testrelay_local.apigw import http_api_event  # noqa: E402
from testrelay_local.functions import load_handler  # noqa: E402
from testrelay_local.runtime import LocalRuntime  # noqa: E402
from testrelay_local.signing import (  # noqa: E402
    basic_auth_headers,
    bitbucket_headers,
    circleci_headers,
    generic_headers,
    github_headers,
    provider_headers,
)
from tests.ci_fixtures import delivery  # noqa: E402
from tests.support import FakeLambdaContext, demo_job  # noqa: E402

EVENTS = ROOT / "events"
GITHUB_PAYLOAD = (EVENTS / "github" / "workflow_run.completed.payload.json").read_bytes()
DEMO_CASES = 6
DOCUMENTED_STATUSES = {200, 202, 400, 401, 404, 413, 415, 503}
LISTING_VARIANTS = ("filtered", "unfiltered", "absent")


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

    def runtime(self, routes: str = "default", run_duration: float = 0.2, log_level: str = "WARNING") -> LocalRuntime:
        """One local runtime at a time (they share this process's environment)."""
        key = (routes, run_duration, log_level)
        if self._active != key:
            self.close()
            routes_file = ROOT / "config" / "routes.yaml" if routes == "default" else self._routes_file(routes)
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
        if name == "every-ci":
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


def crash_after_trigger(runtime: LocalRuntime, listing: str) -> tuple[list[dict[str, Any]], int | None, int]:
    """Trigger a fresh job's plan with a crash before the ledger write, then again (the retry).
    Answers (the job's Testsigma runs, the run the retry recorded, the runs the first attempt started)."""
    from testrelay.relay.run import trigger_plan

    assert runtime.sandbox is not None
    runtime.sandbox.configure(ts_run_listing=listing)
    job: Job = demo_job(delivery=str(uuid.uuid4()))
    with crash_before_ledger_write():
        with suppress(_Crash):
            trigger_plan(job)
        first = len(_runs_of(runtime, job.id))
        recorded = trigger_plan(job).run_id
    return _runs_of(runtime, job.id), recorded, first


def r8_crash_after_trigger(bench: Bench, variants: tuple[str, ...] = LISTING_VARIANTS) -> list[Row]:
    runtime = bench.runtime("default", run_duration=0.0)
    rows: list[Row] = []
    for listing in variants:
        with timed() as elapsed:
            runs, recorded, first = crash_after_trigger(runtime, listing)
        ids = sorted(int(run["id"]) for run in runs)
        if listing == "absent":
            # As documented: no listing. The relay says so in its log and triggers again.
            expected, ok = "2 TS runs (no listing to look in: logged, triggered again)", len(runs) == 2
        else:
            expected, ok = "1 TS run, the one recorded", ids == [recorded] and first == 1
        rows.append(
            Row(
                f"R8 listing={listing}",
                "TriggerPlan dies after Testsigma's answer, before the ledger write; then retried",
                expected,
                f"{len(runs)} TS run(s) {ids}, recorded {recorded}",
                ok,
                elapsed(),
            )
        )
    return rows


# ------------------------------------------------------------------ the table


def _full(bench: Bench) -> dict[str, Callable[[], list[Row]]]:
    return {
        "R1": lambda: r1_redelivered(bench),
        "R4": lambda: r4_fuzz(bench),
        "R5": lambda: r5_burst(bench),
        "R6": lambda: r6_debug_logs(bench),
        "R8": lambda: r8_crash_after_trigger(bench),
    }


def _quick(bench: Bench) -> dict[str, Callable[[], list[Row]]]:
    return {
        "R1": lambda: r1_redelivered(bench, ("github", "gitlab")),
        "R4": lambda: r4_fuzz(bench, requests_count=1_000),
        "R5": lambda: r5_burst(bench, deliveries=50, window=2.0, finish_timeout=120),
        "R6": lambda: r6_debug_logs(bench),
        "R8": lambda: r8_crash_after_trigger(bench),
    }


SCENARIOS = ("R1", "R4", "R5", "R6", "R8")


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
    args = parser.parse_args(argv)
    chosen = [name.strip().upper() for name in args.only.split(",") if name.strip()] or list(SCENARIOS)
    unknown = [name for name in chosen if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    # Everything but the table goes to stderr: the relay's log lines and metrics, the stand-ins' chatter.
    table_out, sys.stdout = sys.stdout, sys.stderr
    relay_logger.registered_handler.setStream(sys.stderr)  # type: ignore[attr-defined]
    bench = Bench(quick=args.quick)
    scenarios = (_quick if args.quick else _full)(bench)
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
