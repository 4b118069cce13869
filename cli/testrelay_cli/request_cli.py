"""`testrelay request`: put one `Test Run Requested` event on the stack's bus (README "Events in")."""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

from pydantic import ValidationError

from testrelay.models.bus_events import REQUEST_DETAIL_TYPE, REQUEST_PROVIDER, TestRunRequest
from testrelay.models.job_message import job_id_for
from testrelay_cli.cli_errors import OK, CliError
from testrelay_cli.cli_output import emit
from testrelay_cli.stack_target import connect

DEFAULT_SOURCE = "testrelay.cli"
# Detail field -> the option that gives it, for a refusal that names what the user typed.
OPTIONS = {"idempotency_key": "--key", "testsigma_run_id": "--run-id", "run_url": "--run-url"}


def cmd_request(args: argparse.Namespace) -> int:
    # Without --key every call asks for a new run; the key is printed so a repeat can reuse it.
    key = args.key or f"cli-{uuid.uuid4()}"
    given = {
        "route": args.route,
        "idempotency_key": key,
        "repository": args.repository,
        "branch": args.branch,
        "sha": args.sha,
        "run_url": args.run_url,
        "testsigma_run_id": args.run_id,
    }
    try:
        request = TestRunRequest.model_validate({k: v for k, v in given.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "route"
        raise CliError(f"{OPTIONS.get(field, '--' + field)}: {first['msg']}") from None
    if args.source.startswith("aws."):
        raise CliError("--source: sources starting with 'aws.' are reserved for AWS services")
    target = connect(args.stack, args.region)
    bus = target.output("EventBusName")
    answer = target.client("events").put_events(
        Entries=[
            {
                "EventBusName": bus,
                "Source": args.source,
                "DetailType": REQUEST_DETAIL_TYPE,
                "Detail": request.model_dump_json(exclude_none=True),
            }
        ]
    )
    [entry] = answer.get("Entries") or [{}]
    if answer.get("FailedEntryCount") or not entry.get("EventId"):
        raise CliError(f"EventBridge refused the request: {entry.get('ErrorCode')}: {entry.get('ErrorMessage')}")
    account = str(target.client("sts").get_caller_identity()["Account"])
    job_id = job_id_for(REQUEST_PROVIDER, f"{account}:{key}", request.route)
    document: dict[str, Any] = {
        "bus": bus,
        "event_id": entry["EventId"],
        "idempotency_key": key,
        "job_id": job_id,
        "detail": json.loads(request.model_dump_json(exclude_none=True)),
    }
    emit(
        args,
        document,
        f"requested route {request.route} on bus {bus} (key {key}): job {job_id}; "
        f"follow it with `testrelay job {job_id}`",
    )
    return OK


def add_request(commands: Any) -> None:
    request = commands.add_parser("request", help="put a Test Run Requested event on the stack's bus")
    request.add_argument("--route", required=True, help="the route to run (its name in the routes file)")
    request.add_argument("--key", help="idempotency key: the same key gives one job (default: a new one)")
    request.add_argument("--repository")
    request.add_argument("--branch")
    request.add_argument("--sha", help="the commit to test")
    request.add_argument("--run-url", help="link to the run that asks (a pipeline, a deployment)")
    request.add_argument("--run-id", type=int, help="an existing Testsigma run: collect and write back its results")
    request.add_argument("--source", default=DEFAULT_SOURCE, help="the event's source (default: %(default)s)")
    request.add_argument("--stack", help="deployed stack name (default: the running `testrelay local`)")
    request.add_argument("--region", help="AWS region of the deployed stack")
    request.set_defaults(run=cmd_request)
