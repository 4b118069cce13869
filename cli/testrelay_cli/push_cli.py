"""`testrelay push-junit`: the command line of junit_push, as a CI step runs it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from testrelay.models.shards import ShardLabel, ShardRefused
from testrelay_cli.cli_errors import OK, CliError
from testrelay_cli.cli_output import emit, readable
from testrelay_cli.junit_push import DIRECT_LIMIT, push_done, push_junit
from testrelay_cli.junit_push import local_defaults as local_push_defaults
from testrelay_cli.stack_target import connect


def _shard(args: argparse.Namespace) -> tuple[dict[str, str], int | None]:
    """The report's run key, shard and attempt as sent, and the shard count; a mistake is one line."""
    if not args.run_key:
        if args.shard or args.attempt or args.done:
            raise CliError("--shard, --attempt and --done need --run-key (e.g. the CI run id shared by every shard)")
        if args.file is None:
            raise CliError("give the report file to push (or --run-key K --done to close a sharded run)")
        return {}, None
    try:
        label = ShardLabel.of(args.run_key, args.shard, args.attempt)
    except ShardRefused as exc:
        raise CliError(str(exc)) from None
    if args.file is None and not args.done:
        raise CliError("give the report file to push, or --done to say every shard of the run key was sent")
    sent = {"run_key": args.run_key, "shard": args.shard or "", "attempt": str(args.attempt or "")}
    return sent, label.count


def cmd_push_junit(args: argparse.Namespace) -> int:
    shard, count = _shard(args)
    if args.file is not None:
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
    answer: dict[str, Any] = {}
    if args.file is not None:
        try:
            answer = push_junit(
                args.file, args.route, url, secret, context, direct_limit=limit, progress=progress, shard=shard
            )
        finally:
            if not args.json and shown["percent"] >= 0:
                print(file=sys.stderr)  # ends the progress line
    if args.done:
        done = push_done(args.route, url, secret, args.run_key, count, context)
        answer = {**answer, **done} if answer else done
    emit(args, answer, _accepted(answer))
    return OK


def _accepted(answer: dict[str, Any]) -> str:
    jobs = ", ".join(answer.get("jobs") or [])
    if "run_key" not in answer:
        cases = f", {answer['cases']} test cases" if "cases" in answer else ""
        return f"report accepted{cases}: job {jobs}"
    expected = f" of {answer['expected']}" if answer.get("expected") else ""
    text = f"run key {answer['run_key']}: {answer.get('received', 0)}{expected} shards received"
    if "shard" in answer:
        text = (
            f"shard {answer['shard']} (attempt {answer['attempt']}) "
            + ("replaced its earlier upload; " if answer.get("replaced") else "accepted; ")
            + text
        )
    if answer.get("done"):
        text += "; done: the job gathers them now"
    return f"{text}: job {jobs}"


def add_push_junit(commands: Any) -> None:
    push = commands.add_parser("push-junit", help="sign and upload a JUnit report for a route's targets")
    push.add_argument("file", type=Path, nargs="?", help="the JUnit XML report (may be left out with --done)")
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
    push.add_argument(
        "--run-key", help="sharded CI run: the key every shard shares (e.g. the CI run id); one run per key"
    )
    push.add_argument("--shard", help="with --run-key: this report's shard, i/n (e.g. 3/8) or i")
    push.add_argument(
        "--attempt", help="with --run-key: the attempt of this shard (e.g. the CI's run attempt); default 1"
    )
    push.add_argument("--done", action="store_true", help="with --run-key: every shard was sent; gather them now")
    push.set_defaults(run=cmd_push_junit)
