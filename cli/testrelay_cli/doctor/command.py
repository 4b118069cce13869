"""The `doctor` subcommand: argument parsing, the vendors to ask, and the table or JSON it prints."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from testrelay.errors import ConfigurationError
from testrelay.observability import logger
from testrelay.routing import load_routes
from testrelay_cli.doctor.checks import Check, DoctorSettings, run_doctor
from testrelay_cli.stack_target import DEFAULT_ROUTES
from testrelay_cli.vendor_endpoints import Vendors

EXIT_OK = 0
EXIT_FAILED = 1
"""At least one check failed."""
EXIT_USAGE = 2
"""The command could not run: a routes file that does not load, a missing key, a malformed option."""
Emit = Callable[[str], None]


def add_doctor_command(commands: Any) -> None:
    """Registers `testrelay doctor` on the CLI's subcommands."""
    doctor = commands.add_parser(
        "doctor",
        help="read-only preflight of a routes file against the vendors (credentials, region, ids, matching)",
        description="Checks each route against the vendors with read-only calls only; never writes to a vendor. "
        "Exit 0: no check failed; 1: a check failed; 2: the command could not run.",
    )
    doctor.add_argument("--routes", type=Path, default=DEFAULT_ROUTES, help="routes file (default: %(default)s)")
    doctor.add_argument(
        "--vendors",
        choices=["real", "sandbox"],
        default="real",
        help="real: the vendors' hosts (or *_BASE_URL) with keys from TESTSIGMA_API_KEY, TESTSIGMA_TM_API_KEY, "
        "BROWSERSTACK_USERNAME, BROWSERSTACK_ACCESS_KEY; sandbox: a local sandbox with its demo data",
    )
    doctor.add_argument(
        "--sample-run",
        action="append",
        default=[],
        metavar="ROUTE=RUN_ID",
        help="an earlier Testsigma run of the route's plan: proves the plan and environment and lists the "
        "plan's cases for a matching dry-run (repeatable)",
    )
    doctor.add_argument("--timeout", type=_seconds, default=10.0, help="seconds per vendor call (default: %(default)s)")
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.set_defaults(run=cmd_doctor)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 300:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds between 0 and 300")
    return seconds


def _sample_runs(values: list[str]) -> dict[str, int]:
    runs: dict[str, int] = {}
    for value in values:
        route, _, run_id = value.partition("=")
        if not route or not run_id.strip().isdigit():
            raise ValueError(f"--sample-run {value!r}: write ROUTE=RUN_ID, e.g. octo-checkout=4711")
        runs[route.strip()] = int(run_id)
    return runs


# Packages that can stand in for the vendors (the local runtime's sandbox) name a context manager factory
# yielding Vendors under this entry-point group, by the --vendors choice it answers.
VENDOR_SOURCES_GROUP = "testrelay.vendor_sources"


@contextmanager
def _vendors(choice: str) -> Iterator[Vendors]:
    if choice == "real":
        yield Vendors.from_environment()
        return
    sources = entry_points(group=VENDOR_SOURCES_GROUP, name=choice)
    if not sources:
        raise ValueError(
            f"--vendors {choice} needs the local runtime (testrelay-local), which is not installed here: "
            "use --vendors real, or run doctor in a checkout after `make`"
        )
    source: Callable[[], AbstractContextManager[Vendors]] = next(iter(sources)).load()
    with source() as vendors:
        yield vendors


def table(checks: list[Check]) -> str:
    headers = ["check", "target", "result", "detail"]
    rows = [[c.check, c.target, c.result, c.detail] for c in checks]
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(3)]
    lines = []
    for row in [headers, ["-" * w for w in widths] + ["-" * 6], *rows]:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3])
    return "\n".join(lines)


def summary(checks: list[Check]) -> str:
    counts = {result: sum(c.result == result for c in checks) for result in ("ok", "FAIL", "warn", "unchecked")}
    return ", ".join(f"{n} {name}" for name, n in counts.items() if n) or "nothing to check"


@contextmanager
def _quiet_relay_log() -> Iterator[None]:
    """The clients log retries and detections as JSON on stdout: not in a table, never inside --json."""
    level = logger.log_level
    logger.setLevel("WARNING")
    try:
        yield
    finally:
        logger.setLevel(level)


def cmd_doctor(args: argparse.Namespace, emit: Emit = print) -> int:
    with _quiet_relay_log():
        try:
            return _doctor(args, emit)
        except KeyboardInterrupt:
            print("testrelay doctor: interrupted", file=sys.stderr)
            return 130


def _doctor(args: argparse.Namespace, emit: Emit) -> int:
    try:
        config = load_routes(args.routes)
        sample_runs = _sample_runs(args.sample_run)
        with _vendors(args.vendors) as vendors:
            settings = DoctorSettings(
                urls=vendors.urls, credentials=vendors.credentials, sample_runs=sample_runs, timeout=args.timeout
            )
            checks = run_doctor(config, settings)
    except (ConfigurationError, ValueError, OSError) as exc:
        message = str(exc).strip()
        if args.json:
            emit(json.dumps({"ok": False, "error": message, "exit_code": EXIT_USAGE}))
        else:
            print(f"testrelay doctor: {message}", file=sys.stderr)
        return EXIT_USAGE
    failed = any(check.result == "FAIL" for check in checks)
    code = EXIT_FAILED if failed else EXIT_OK
    if args.json:
        emit(json.dumps({"ok": not failed, "exit_code": code, "checks": [c.as_json() for c in checks]}, indent=2))
    else:
        emit(table(checks))
        emit(f"\n{args.routes}: {summary(checks)}" + (" - fix the FAIL rows before deploying" if failed else ""))
    return code
