"""`testrelay`: the operator and developer command line."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import uuid
from pathlib import Path

import requests

from testrelay.errors import ConfigurationError
from testrelay.models.routes import Target, TestsigmaOverrideTarget
from testrelay.routing import load_routes
from testrelay_local.demo import DEFAULT_PAYLOAD, run_demo
from testrelay_local.doctor import add_doctor_command
from testrelay_local.ops_cli import add_commands
from testrelay_local.runtime import DEFAULT_ROUTES, LOCAL_WEBHOOK_SECRET, LocalRuntime, Vendors
from testrelay_local.signing import DEFAULT_EVENTS, provider_headers
from testrelay_local.stack_target import LOCAL_STATE, write_local_state


def _vendors(choice: str) -> Vendors | None:
    return Vendors.from_environment() if choice == "real" else None


def cmd_local(args: argparse.Namespace) -> int:
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
        print(f"webhook URL:    {runtime.webhook_url('github')}  (secret: {runtime.webhook_secret})")
        if runtime.sandbox is not None:
            print(f"sandbox state:  {runtime.sandbox.base_url}/_sandbox/state")
        print(f"AWS (moto):     {runtime.aws.endpoint_url}")
        print("serving; Ctrl-C stops", flush=True)
        # Lets `testrelay jobs`, `resync`, `redrive` and `schedule fire` find this runtime.
        write_local_state(runtime.aws.endpoint_url, runtime.outputs, runtime.webhook_url("github"))
        try:
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
        finally:
            LOCAL_STATE.unlink(missing_ok=True)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(routes=args.routes, payload=args.payload, vendors=_vendors(args.vendors))


def cmd_send(args: argparse.Namespace) -> int:
    body = Path(args.file).read_bytes()
    headers = provider_headers(args.provider, args.secret, body, args.event, args.delivery or str(uuid.uuid4()))
    answer = requests.post(args.url, data=body, headers=headers, timeout=30)
    print(f"{answer.status_code} {answer.text}")
    return 0 if answer.ok else 1


def _describe(target: Target) -> str:
    if isinstance(target, TestsigmaOverrideTarget):
        return f"{target.name} ({target.kind}, {len(target.overrides)} override rule(s))"
    return f"{target.name} ({target.kind}, matched by {' then '.join(target.match_by)}, {len(target.case_map)} mapped)"


def cmd_routes_check(args: argparse.Namespace) -> int:
    config = load_routes(args.file)
    for route in config.routes:
        targets = ", ".join(_describe(t) for t in route.targets) or "none"
        print(f"{route.name}: plan {route.testsigma.test_plan_id}; targets: {targets}")
    print(f"{args.file}: {len(config.routes)} route(s), valid")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="testrelay", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)

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

    add_commands(commands)
    add_doctor_command(commands)

    routes = commands.add_parser("routes", help="routes file tools")
    routes_commands = routes.add_subparsers(dest="routes_command", required=True)
    check = routes_commands.add_parser("check", help="validate a routes file")
    check.add_argument("file", type=Path, nargs="?", default=DEFAULT_ROUTES)
    check.set_defaults(run=cmd_routes_check)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except (ConfigurationError, ValueError) as exc:
        print(f"testrelay: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
