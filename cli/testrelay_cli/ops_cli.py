"""The operator commands of `testrelay`: readable by a person, and by a script with --json."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from testrelay_cli.cli_errors import FAILED, OK, CliError
from testrelay_cli.cli_output import emit, note
from testrelay_cli.operations import (
    enqueue,
    execution_arn,
    fire_schedule,
    job_failed,
    job_reason,
    list_jobs,
    redrive,
    resync_job,
    retry_job,
    show_job,
    started_before,
    target_reason,
)
from testrelay_cli.progress import follow
from testrelay_cli.push_cli import add_push_junit
from testrelay_cli.stack_target import DEFAULT_ROUTES, StackTarget, connect


def _target(args: argparse.Namespace) -> StackTarget:
    return connect(args.stack, args.region)


def cmd_jobs(args: argparse.Namespace) -> int:
    jobs = [{**j, "reason": job_reason(j)} for j in list_jobs(_target(args), args.limit)]
    rows = [
        f"{j['job_id']:<45} {j.get('state', ''):<10} {j.get('route', ''):<20} "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(int(j.get('created_at', 0))))}  {j.get('summary', '')}"
        + (f"  reason: {j['reason']}" if j["reason"] else "")
        for j in jobs
    ]
    emit(args, jobs, "\n".join(rows) or "no jobs")
    return OK


def _job_lines(job: dict[str, Any]) -> list[str]:
    run = job.get("testsigma_run") or {}
    lines = [
        f"job       {job['job_id']} ({job.get('kind')}, route {job.get('route')})",
        f"state     {job.get('state')} (attempt {job.get('attempt', 1)})",
        f"from      {job.get('provider')} {job.get('repository')} {job.get('commit_sha', '')} "
        f"(delivery {job.get('delivery_key')})",
        f"run       {run.get('run_id', '-')} {run.get('url', '')}",
        f"counts    {job.get('summary', '-')}",
    ]
    for outcome in job.get("targets") or []:
        reason = target_reason(outcome)
        lines.append(
            f"target    {outcome.get('target')}: {outcome.get('status')}, {outcome.get('written', 0)} written, "
            f"{outcome.get('unmatched', 0)} unmatched, run {outcome.get('run_id') or '-'}"
            + (f"; reason: {reason}" if reason else "")
        )
    if job.get("error"):
        lines.append(f"error     {job['error']}")
    if job.get("state") == "dispatch_failed" and job.get("dispatch_error"):
        lines.append(f"error     could not start: {job['dispatch_error']}")
    if job_failed(job):
        lines.append(f"retry     testrelay retry {job['job_id']}  (resumes from its checkpoints)")
    return lines


def cmd_job(args: argparse.Namespace) -> int:
    target = _target(args)
    job = show_job(target, args.job_id)
    if job is None:
        raise CliError(f"no job {args.job_id!r} in {target.name}: `testrelay jobs` lists the recent ones")
    failed = job_failed(job)
    reason = job_reason(job)
    # Exits non-zero when the job or any target failed; the JSON then carries `error` like every failure.
    emit(args, {**job, "reason": reason, **({"error": reason} if failed else {})}, "\n".join(_job_lines(job)))
    return FAILED if failed else OK


def _wait_for_execution(target: StackTarget, job_id: str, timeout: float) -> str:
    sfn = target.client("stepfunctions")
    arn = execution_arn(target, job_id)
    deadline = time.monotonic() + timeout
    while True:
        try:
            sfn.describe_execution(executionArn=arn)
            return arn
        except sfn.exceptions.ExecutionDoesNotExist:
            if time.monotonic() > deadline:
                raise CliError(
                    f"job {job_id} was not dispatched within {timeout:.0f}s: `testrelay job {job_id}` shows it later, "
                    "`testrelay redrive --dry-run` whether it rests in the DLQ",
                    FAILED,
                ) from None
            time.sleep(0.5)


def cmd_resync(args: argparse.Namespace) -> int:
    job = resync_job(str(args.routes), args.route, args.run_id, again=args.again)  # a bad --route fails offline
    target = _target(args)
    answer: dict[str, Any] = {"job_id": job.id, "run_id": args.run_id}
    existing = show_job(target, job.id)
    if existing is not None:
        # A repeat is not an error (the run is synced), but it starts nothing, and says so.
        answer |= {"started": False, "state": existing.get("state")}
        note(
            args,
            f"run {args.run_id} was already synced by job {job.id} (state {existing.get('state')}): "
            "nothing started; --again re-syncs it",
        )
    else:
        enqueue(target, job)
        answer["started"] = True
        note(args, f"queued result-sync job {job.id} for run {args.run_id}")
    if not args.wait:
        if args.json:
            emit(args, answer, "")
        return OK
    sfn = target.client("stepfunctions")
    try:
        execution = follow(sfn, _wait_for_execution(target, job.id, 60), lambda line: note(args, line), args.timeout)
    except TimeoutError:
        raise CliError(
            f"job {job.id} still runs after {args.timeout:.0f}s: `testrelay job {job.id}` shows it later", FAILED
        ) from None
    record = show_job(target, job.id) or {}
    answer |= {"status": execution["status"], "state": record.get("state"), "reason": job_reason(record)}
    failed = execution["status"] != "SUCCEEDED" or job_failed(record)
    if failed:
        answer["error"] = f"job {job.id} {execution['status'].lower()}: {answer['reason'] or 'see `testrelay job`'}"
    text = f"job {job.id} {execution['status'].lower()}" + (f": {answer['reason']}" if answer["reason"] else "")
    emit(args, answer, text)
    return FAILED if failed else OK


def _follow(args: argparse.Namespace, target: StackTarget, job_id: str, execution: str) -> dict[str, Any]:
    """Follow an execution to its end; the answer's part of it (status, the job's state and reason)."""
    sfn = target.client("stepfunctions")
    try:
        ended = follow(sfn, _wait_for_execution(target, execution, 60), lambda line: note(args, line), args.timeout)
    except TimeoutError:
        raise CliError(
            f"job {job_id} still runs after {args.timeout:.0f}s: `testrelay job {job_id}` shows it later", FAILED
        ) from None
    record = show_job(target, job_id) or {}
    return {"status": ended["status"], "state": record.get("state"), "reason": job_reason(record), "record": record}


def cmd_retry(args: argparse.Namespace) -> int:
    target = _target(args)
    retry = retry_job(target, args.job_id)
    answer: dict[str, Any] = asdict(retry)
    note(args, retry.note)
    if not args.wait:
        if args.json:
            emit(args, answer, "")
        return OK
    followed = _follow(args, target, retry.job_id, retry.execution)
    record = followed.pop("record")
    answer |= followed
    failed = followed["status"] != "SUCCEEDED" or job_failed(record)
    if failed:
        answer["error"] = (
            f"job {retry.job_id} attempt {retry.attempt} {followed['status'].lower()}: "
            f"{followed['reason'] or 'see `testrelay job`'}"
        )
    text = f"job {retry.job_id} attempt {retry.attempt} {followed['status'].lower()}" + (
        f": {followed['reason']}" if followed["reason"] and failed else ""
    )
    emit(args, answer, text)
    return FAILED if failed else OK


def cmd_redrive(args: argparse.Namespace) -> int:
    def show(moved: Any) -> None:
        if not args.json:
            verb = "would move" if args.dry_run else "moved"
            print(f"{verb} {moved.job_id} (route {moved.route}, received {moved.receive_count} times): {moved.reason}")

    moved = redrive(_target(args), dry_run=args.dry_run, emit=show)
    if args.json:
        print(json.dumps([asdict(m) for m in moved], indent=2))
    elif not moved:
        print("the DLQ is empty")
    return OK


def cmd_schedule_fire(args: argparse.Namespace) -> int:
    target = _target(args)
    started = time.time()
    result = fire_schedule(target, args.name, args.time)
    repeat = started_before(target, result["job_id"], started)
    result["started"] = not repeat
    text = f"schedule {args.name} fired for {result['scheduled_time']}: job {result['job_id']}"
    if repeat:
        # Not an error (EventBridge may deliver a firing twice, and that is fine), but visible.
        record = show_job(target, result["job_id"]) or {}
        result["state"] = record.get("state")
        text = (
            f"schedule {args.name} already fired for {result['scheduled_time']} (job {result['job_id']}, "
            f"state {record.get('state')}): nothing started; --time names another time"
        )
    emit(args, result, text)
    return OK


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


_positive.__name__ = "positive int"  # argparse names the type: "invalid positive int value: '0'"


def add_commands(commands: Any) -> None:
    def stack_options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--stack", help="deployed stack name (default: the running `testrelay local`)")
        parser.add_argument("--region", help="AWS region of the deployed stack")

    jobs = commands.add_parser("jobs", help="list recent jobs from the ledger")
    stack_options(jobs)
    jobs.add_argument("--limit", type=_positive, default=20, help="how many (default: %(default)s)")
    jobs.set_defaults(run=cmd_jobs)

    job = commands.add_parser("job", help="one job: state, Testsigma run, targets, counts, errors")
    stack_options(job)
    job.add_argument("job_id")
    job.set_defaults(run=cmd_job)

    resync = commands.add_parser("resync", help="write the results of an existing Testsigma run")
    stack_options(resync)
    resync.add_argument("run_id", type=int)
    resync.add_argument("--route", required=True, help="the route whose targets receive the results")
    resync.add_argument("--routes", type=Path, default=DEFAULT_ROUTES)
    resync.add_argument("--again", action="store_true", help="re-sync a run that was already synced")
    resync.add_argument("--wait", action="store_true", help="follow the job until it ends")
    resync.add_argument("--timeout", type=float, default=3600)
    resync.set_defaults(run=cmd_resync)

    retry = commands.add_parser(
        "retry", help="run a failed, partial or timed-out job again from its checkpoints (reusing its runs)"
    )
    stack_options(retry)
    retry.add_argument("job_id")
    retry.add_argument("--wait", action="store_true", help="follow the attempt until it ends")
    retry.add_argument("--timeout", type=float, default=3600)
    retry.set_defaults(run=cmd_retry)

    redrive_parser = commands.add_parser("redrive", help="move DLQ messages back to the jobs queue")
    stack_options(redrive_parser)
    redrive_parser.add_argument("--dry-run", action="store_true", help="only show what would move")
    redrive_parser.set_defaults(run=cmd_redrive)

    add_push_junit(commands)

    schedule = commands.add_parser("schedule", help="schedule tools")
    schedule_commands = schedule.add_subparsers(dest="schedule_command", required=True)
    fire = schedule_commands.add_parser("fire", help="fire a schedule now (or for --time)")
    stack_options(fire)
    fire.add_argument("name")
    fire.add_argument("--time", help="the scheduled time (ISO 8601); the same time never runs twice")
    fire.set_defaults(run=cmd_schedule_fire)
