"""`testrelay`: the operator and developer command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import threading
import traceback
import uuid
from pathlib import Path
from typing import Any, NoReturn

import requests

from testrelay.models.routes import Target, TestsigmaOverrideTarget
from testrelay.routing import load_routes
from testrelay_local.cli_errors import CANNOT, FAILED, INTERNAL, INTERRUPTED, OK, CliError, explain
from testrelay_local.cli_output import emit, note, readable
from testrelay_local.demo import DEFAULT_PAYLOAD, run_demo
from testrelay_local.doctor import add_doctor_command
from testrelay_local.ops_cli import add_commands
from testrelay_local.runtime import DEFAULT_ROUTES, LOCAL_WEBHOOK_SECRET, LocalRuntime, Vendors
from testrelay_local.signing import DEFAULT_EVENTS, provider_headers
from testrelay_local.stack_target import local_state_file, write_local_state


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
        write_local_state(runtime.aws.endpoint_url, runtime.outputs, runtime.webhook_url("github"))
        try:
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
        finally:
            local_state_file().unlink(missing_ok=True)
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


def _describe(target: Target) -> str:
    if isinstance(target, TestsigmaOverrideTarget):
        return f"{target.name} ({target.kind}, {len(target.overrides)} override rule(s))"
    return f"{target.name} ({target.kind}, matched by {' then '.join(target.match_by)}, {len(target.case_map)} mapped)"


def cmd_routes_check(args: argparse.Namespace) -> int:
    config = load_routes(args.file)
    lines = [
        f"{route.name}: plan {route.testsigma.test_plan_id}; targets: "
        + (", ".join(_describe(t) for t in route.targets) or "none")
        for route in config.routes
    ]
    lines.append(f"{args.file}: {len(config.routes)} route(s), valid")
    routes = [{"name": r.name, "targets": [_describe(t) for t in r.targets]} for r in config.routes]
    emit(args, {"file": str(args.file), "valid": True, "routes": routes}, "\n".join(lines))
    return OK


class UsageError(Exception):
    """A command line argparse refused; raised instead of argparse's exit so --json can answer it."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("testrelay").strip() or "testrelay"
        raise UsageError(f"{command}: {message} (see `{self.prog} --help`)")


def _common_options(parser: argparse.ArgumentParser) -> None:
    """--json and --debug on every command, also one registered later in its own module."""
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in subcommands:
        for child in set(action.choices.values()):
            _common_options(child)
    if subcommands:
        return
    if "--json" not in parser._option_string_actions:
        parser.add_argument("--json", action="store_true", help="one JSON document on stdout (errors too)")
    if "--debug" not in parser._option_string_actions:
        parser.add_argument("--debug", action="store_true", help="print the traceback of an internal error")


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="testrelay", description=__doc__)
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
    _common_options(top)
    return top


def _fail(message: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"error": message}))
    else:
        print(f"testrelay: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Read from the raw arguments: a command line argparse refuses has no parsed --json.
    as_json, debug = "--json" in argv, "--debug" in argv
    try:
        args = parser().parse_args(argv)
        code: int = args.run(args)
    except UsageError as exc:
        _fail(str(exc), as_json)
        return CANNOT
    except KeyboardInterrupt:
        _fail("interrupted", as_json)
        return INTERRUPTED
    except Exception as exc:
        if debug:
            traceback.print_exc()
        message = explain(exc)
        if message is None:
            _fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", as_json)
            return INTERNAL
        _fail(message, as_json)
        return exc.code if isinstance(exc, CliError) else CANNOT
    return code


if __name__ == "__main__":
    sys.exit(main())
