"""The commands of `testrelay` that need this checkout: the local runtime, the demo, signing an event
file, keeping template.yaml's schedules in step. Registered on the operator CLI (testrelay_cli)
through the `testrelay.commands` entry point, so `testrelay` has them only where this package is installed."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from testrelay.routing import load_routes
from testrelay_cli.cli_errors import FAILED, OK, CliError
from testrelay_cli.cli_output import emit, note, readable
from testrelay_cli.stack_target import LOCAL_WEBHOOK_SECRET, local_state_file, write_local_state
from testrelay_cli.vendor_endpoints import Vendors as EnvironmentVendors
from testrelay_local.demo import DEFAULT_PAYLOAD, run_demo
from testrelay_local.functions import ROOT
from testrelay_local.runtime import DEFAULT_ROUTES, LocalRuntime, Vendors
from testrelay_local.schedules_sync import sync
from testrelay_local.signing import DEFAULT_EVENTS, provider_headers


def _vendors(choice: str) -> Vendors | None:
    if choice != "real":
        return None
    try:
        return Vendors.from_environment()
    except ValueError as exc:  # a missing key: the message names it
        raise CliError(f"{exc}: export them, or use --vendors sandbox") from None


def cmd_local(args: argparse.Namespace) -> int:
    load_routes(args.routes)  # a clear error before anything starts
    runtime = LocalRuntime(
        routes_file=args.routes,
        port=args.port,
        vendors=_vendors(args.vendors),
        time_scale=args.time_scale,
        sandbox_port=args.sandbox_port,
        log_level=args.log_level,
        webhook_secret=args.secret,
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with runtime:
        # The default secret is a published development value; one given with --secret stays unprinted.
        shown = runtime.webhook_secret if args.secret == LOCAL_WEBHOOK_SECRET else "the one given with --secret"
        served = {
            "webhook_url": runtime.webhook_url("github"),
            "sandbox_state_url": f"{runtime.sandbox.base_url}/_sandbox/state" if runtime.sandbox else None,
            "aws_endpoint_url": runtime.aws.endpoint_url,
        }
        text = f"webhook URL:    {served['webhook_url']}  (secret: {shown})\n"
        if served["sandbox_state_url"]:
            text += f"sandbox state:  {served['sandbox_state_url']}\n"
        emit(args, served, text + f"AWS (moto):     {runtime.aws.endpoint_url}\nserving; Ctrl-C stops")
        sys.stdout.flush()
        # Lets `testrelay jobs`, `resync`, `redrive` and `schedule fire` find this runtime.
        state = local_state_file(ROOT)
        write_local_state(runtime.aws.endpoint_url, runtime.outputs, runtime.webhook_url("github"), state)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
        finally:
            state.unlink(missing_ok=True)
    return OK


def cmd_demo(args: argparse.Namespace) -> int:
    readable(args.payload)
    vendors = _vendors(args.vendors)
    try:
        code = run_demo(routes=args.routes, payload=args.payload, vendors=vendors, emit=lambda line: note(args, line))
    except TimeoutError as exc:  # a job that never ended: the relay's logs above say where it stopped
        raise CliError(f"{exc}; the demo gave up", FAILED) from None
    if args.json:
        emit(args, {"succeeded": code == OK}, "")
    return code


def cmd_send(args: argparse.Namespace) -> int:
    body = readable(args.file).read_bytes()
    headers = provider_headers(args.provider, args.secret, body, args.event, args.delivery or str(uuid.uuid4()))
    answer = requests.post(args.url, data=body, headers=headers, timeout=30)
    try:
        answered: Any = answer.json()
    except ValueError:
        answered = answer.text
    emit(args, {"status": answer.status_code, "answer": answered}, f"{answer.status_code} {answer.text}")
    return OK if answer.ok else FAILED


def cmd_schedules_sync(args: argparse.Namespace) -> int:
    changed = sync(Path(args.template), load_routes(args.routes))
    text = f"{args.template}: {'schedules updated' if changed else 'already in step with the routes file'}"
    emit(args, {"template": str(args.template), "changed": changed}, text)
    return OK


@contextlib.contextmanager
def sandbox_vendors() -> Iterator[EnvironmentVendors]:
    """`testrelay doctor --vendors sandbox`: a sandbox with its demo data, for as long as the checks run."""
    from testrelay_local.sandbox import Sandbox, SandboxSeed

    seed = SandboxSeed.demo()
    with Sandbox(seed=seed, run_duration=0) as sandbox:
        yield Vendors.sandbox(sandbox, seed)


def add_commands(commands: Any) -> None:
    local = commands.add_parser("local", help="serve the whole relay on this machine until stopped")
    local.add_argument("--routes", type=Path, default=DEFAULT_ROUTES, help="routes file (default: %(default)s)")
    local.add_argument("--port", type=int, default=8080, help="webhook port (default: %(default)s; 0 = any)")
    local.add_argument("--sandbox-port", type=int, default=0, help="vendor sandbox port (default: any free)")
    local.add_argument("--vendors", choices=["sandbox", "real"], default="sandbox")
    local.add_argument(
        "--time-scale", type=float, default=0.01, help="factor on the state machine's waits and retry intervals"
    )
    local.add_argument("--log-level", default="INFO")
    local.add_argument("--secret", default=LOCAL_WEBHOOK_SECRET, help="webhook secret to accept")
    local.set_defaults(run=cmd_local)

    demo = commands.add_parser("demo", help="send one signed GitHub delivery through the local relay")
    demo.add_argument("--routes", type=Path, default=DEFAULT_ROUTES)
    demo.add_argument("--payload", type=Path, default=DEFAULT_PAYLOAD, help="a workflow_run payload")
    demo.add_argument("--vendors", choices=["sandbox", "real"], default="sandbox")
    demo.set_defaults(run=cmd_demo)

    send = commands.add_parser("send", help="sign an event file like its CI does and POST it")
    send.add_argument("file", type=Path)
    send.add_argument("--url", required=True)
    send.add_argument("--provider", choices=sorted(DEFAULT_EVENTS), default="github", help="(default: %(default)s)")
    send.add_argument(
        "--event", help="the event header (X-GitHub-Event, X-Gitlab-Event, ...; default: the provider's usual one)"
    )
    send.add_argument("--secret", required=True, help="webhook secret (Jenkins, Azure DevOps: the Basic password)")
    send.add_argument(
        "--delivery", help="GitHub delivery, GitLab Idempotency-Key or Bitbucket request id (reuse one to redeliver)"
    )
    send.set_defaults(run=cmd_send)

    schedules = commands.add_parser("schedules", help="keep template.yaml's schedules in step with the routes")
    schedules_commands = schedules.add_subparsers(dest="schedules_command", required=True)
    sync_parser = schedules_commands.add_parser("sync", help="rewrite the ScheduleFunction events")
    sync_parser.add_argument("--routes", type=Path, default=DEFAULT_ROUTES)
    sync_parser.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    sync_parser.set_defaults(run=cmd_schedules_sync)
