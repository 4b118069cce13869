"""`testrelay`: the operator command line (and, where the local runtime is installed, its commands too)."""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from importlib.metadata import entry_points
from pathlib import Path
from typing import NoReturn

from testrelay.models.routes import Target, TestsigmaOverrideTarget
from testrelay.routing import load_routes, write_index
from testrelay_cli.cli_errors import CANNOT, INTERNAL, INTERRUPTED, OK, CliError, explain
from testrelay_cli.cli_output import emit
from testrelay_cli.doctor import add_doctor_command
from testrelay_cli.ops_cli import add_commands
from testrelay_cli.request_cli import add_request
from testrelay_cli.stack_target import DEFAULT_ROUTES

# Packages that add commands (the local runtime's `local`, `demo`, ...) name a `add_commands(commands)`
# under this entry-point group; an operator CLI installed alone has only its own.
COMMANDS_GROUP = "testrelay.commands"


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


def cmd_routes_index(args: argparse.Namespace) -> int:
    target = write_index(args.file)
    emit(args, {"file": str(args.file), "index": str(target)}, f"{args.file}: valid; index written to {target}")
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

    for extension in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        extension.load()(commands)
    add_commands(commands)
    add_doctor_command(commands)
    add_request(commands)

    routes = commands.add_parser("routes", help="routes file tools")
    routes_commands = routes.add_subparsers(dest="routes_command", required=True)
    check = routes_commands.add_parser("check", help="validate a routes file")
    check.add_argument("file", type=Path, nargs="?", default=DEFAULT_ROUTES)
    check.set_defaults(run=cmd_routes_check)
    index = routes_commands.add_parser(
        "index", help="validate a routes file and write the index the webhook reads beside it (make build runs it)"
    )
    index.add_argument("file", type=Path, nargs="?", default=DEFAULT_ROUTES)
    index.set_defaults(run=cmd_routes_index)
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
