"""`testrelay push-junit`: the command line of junit_push, as a CI step runs it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from testrelay_cli.cli_errors import OK, CliError
from testrelay_cli.cli_output import emit, readable
from testrelay_cli.junit_push import DIRECT_LIMIT, push_junit
from testrelay_cli.junit_push import local_defaults as local_push_defaults
from testrelay_cli.stack_target import connect


def cmd_push_junit(args: argparse.Namespace) -> int:
    readable(args.file)
    url, secret = args.url, args.secret
    if not url and args.stack:
        # The reports API hangs off the same HTTP API as the webhooks.
        url = connect(args.stack, args.region).output("WebhookBaseUrl").removesuffix("/webhooks")
    if not url:
        url, local_secret = local_push_defaults()
        secret = secret or local_secret
    if not secret:
        raise CliError("--secret (or TESTRELAY_SECRET) is needed with --url: the `generic` webhook secret")
    shown = {"percent": -1}

    def progress(sent: int, size: int) -> None:
        percent = 100 * sent // max(size, 1)
        if not args.json and percent // 10 != shown["percent"] // 10:
            print(f"\ruploading {args.file.name}: {percent}% of {size:,} bytes", end="", file=sys.stderr, flush=True)
            shown["percent"] = percent

    context = {
        "delivery_id": args.delivery,
        "repository": args.repository,
        "branch": args.branch,
        "sha": args.sha,
        "run_url": args.run_url,
    }
    limit = -1 if args.upload else DIRECT_LIMIT
    try:
        answer = push_junit(args.file, args.route, url, secret, context, direct_limit=limit, progress=progress)
    finally:
        if not args.json and shown["percent"] >= 0:
            print(file=sys.stderr)  # ends the progress line
    cases = f", {answer['cases']} test cases" if "cases" in answer else ""
    emit(args, answer, f"report accepted{cases}: job {', '.join(answer.get('jobs') or [])}")
    return OK


def add_push_junit(commands: Any) -> None:
    push = commands.add_parser("push-junit", help="sign and upload a JUnit report for a route's targets")
    push.add_argument("file", type=Path)
    push.add_argument("--route", required=True, help="the route whose targets receive the results")
    push.add_argument("--url", help="the relay's API base URL (default: --stack's, else the running `testrelay local`)")
    push.add_argument("--stack", help="deployed stack name whose API receives the report")
    push.add_argument("--region", help="AWS region of the deployed stack")
    push.add_argument(
        "--secret", default=os.environ.get("TESTRELAY_SECRET"), help="the generic webhook secret (TESTRELAY_SECRET)"
    )
    push.add_argument("--delivery", help="dedupe key of an upload (a report sent in the request dedupes on its bytes)")
    push.add_argument("--repository")
    push.add_argument("--branch")
    push.add_argument("--sha", help="the commit the report belongs to")
    push.add_argument("--run-url", help="link to the CI run, shown in the target's run")
    push.add_argument(
        "--upload", action="store_true", help=f"use the pre-signed S3 upload (default above {DIRECT_LIMIT:,} bytes)"
    )
    push.set_defaults(run=cmd_push_junit)
