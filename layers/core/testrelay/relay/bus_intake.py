"""Events from EventBridge in, jobs on the queue out: `Test Run Requested` from the stack's bus, and
CodeBuild / CodePipeline state changes from the default bus. No vendor calls.

Exactly once per request: the job id derives from the sender's account, the idempotency key and
the route, so a redelivered or re-sent event finds its job already recorded (the dispatcher's
ledger write and the execution name), as a redelivered webhook does. An event that can never
become a job (a detail that does not validate, an unknown route) is parked in the events DLQ with
the reason as a message attribute; one that may pass later (the queue or CodePipeline unreachable)
raises, so Lambda retries the invocation and then moves it to the same DLQ with the error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import ValidationError

from testrelay.aws.codepipeline import action_executions, execution_and_pipeline
from testrelay.aws.queue import park, send_jobs
from testrelay.ci import codebuild, codepipeline
from testrelay.ci.base import Ignored, string
from testrelay.ci.boundary import printable
from testrelay.errors import InvalidPayload
from testrelay.models.bus_events import REQUEST_DETAIL_TYPE, REQUEST_PROVIDER, TestRunRequest
from testrelay.models.ci_event import CiEvent
from testrelay.models.job import Job
from testrelay.observability import logger, metrics
from testrelay.route_matching import match_routes
from testrelay.routing import load_routes
from testrelay.settings import get_settings

CODEBUILD = codebuild.CodeBuildEvents()
CODEPIPELINE = codepipeline.CodePipelineEvents()
_ENVELOPE = ("id", "source", "detail-type", "account", "region", "time")


def receive_bus_event(event: Any) -> dict[str, Any]:
    """One EventBridge event: `accepted` with its jobs, `ignored` with the reason, or `parked`."""
    try:
        return _receive(event)
    except (InvalidPayload, ValidationError, RecursionError, UnicodeError) as exc:
        reason = printable(_describe(exc))
        return _park(event, reason)


def _receive(event: Any) -> dict[str, Any]:
    if not isinstance(event, Mapping):
        raise InvalidPayload("an EventBridge event must be a JSON object")
    source = string(event, "source", required=True) or ""
    detail_type = string(event, "detail-type", required=True) or ""
    if detail_type == REQUEST_DETAIL_TYPE and not source.startswith("aws."):
        return _enqueue([_requested_job(event)], detail_type)
    if (source, detail_type) == (codebuild.SOURCE, codebuild.DETAIL_TYPE):
        return _route(CODEBUILD.normalise(event))
    if (source, detail_type) == (codepipeline.SOURCE, codepipeline.DETAIL_TYPE):
        return _route(_pipeline_event(event))
    raise InvalidPayload(f"no contract for events of source {source!r} and detail-type {detail_type!r}")


def _requested_job(event: Mapping[str, Any]) -> Job:
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise InvalidPayload("field 'detail' must be an object")
    request = TestRunRequest.model_validate(detail)
    config = load_routes(get_settings().require("routes_file"))
    try:
        route = config.route(request.route)
    except KeyError:
        raise InvalidPayload(f"no route named {request.route!r} in the routes file") from None
    account = string(event, "account") or ""
    ci_event = CiEvent(
        provider=REQUEST_PROVIDER,
        event=REQUEST_DETAIL_TYPE,
        # Scoped by the sender's account: two accounts allowed on the bus cannot collide on a key.
        delivery_key=f"{account}:{request.idempotency_key}",
        repository=request.repository or f"request/{request.route}",
        branch=request.branch,
        commit_sha=request.sha.lower() if request.sha else None,
        pipeline_id=request.idempotency_key,
        pipeline_name=request.name,
        run_url=request.run_url,
        testsigma_run_id=request.testsigma_run_id,
    )
    return Job.for_event(ci_event, route.action())


def _pipeline_event(event: Mapping[str, Any]) -> CiEvent | Ignored:
    first = CODEPIPELINE.normalise(event)
    if isinstance(first, Ignored):
        return first  # a running execution: no look-up needed
    execution, pipeline = execution_and_pipeline(first.pipeline_name, first.pipeline_id or "")
    # Only a pipeline whose triggers pick the branch needs the actions' own record of what they took.
    actions = (
        action_executions(first.pipeline_name, first.pipeline_id or "")
        if pipeline and codepipeline.has_git_triggers(pipeline)
        else None
    )
    return CODEPIPELINE.normalise(event, execution, pipeline, actions)


def _route(parsed: CiEvent | Ignored) -> dict[str, Any]:
    if isinstance(parsed, Ignored):
        logger.info("bus event ignored", event=parsed.event, reason=parsed.reason)
        return {"status": "ignored", "reason": printable(parsed.reason)}
    routes = load_routes(get_settings().require("routes_file"))
    matched, reasons = match_routes(routes.routes, parsed)
    if not matched:
        reason = "no route matches this event" + (": " + "; ".join(reasons) if reasons else "")
        logger.info("bus event matched no route", provider=parsed.provider, delivery=parsed.delivery_key)
        return {"status": "ignored", "reason": printable(reason)}
    return _enqueue([Job.for_event(parsed, route.action()) for route in matched], parsed.event)


def _enqueue(jobs: list[Job], detail_type: str) -> dict[str, Any]:
    send_jobs(get_settings().require("jobs_queue_url"), jobs)
    logger.info("bus event enqueued", detail_type=detail_type, jobs=[job.id for job in jobs])
    metrics.add_metric(name="JobsEnqueued", unit=MetricUnit.Count, value=len(jobs))
    return {"status": "accepted", "jobs": [job.id for job in jobs]}


def _park(event: Any, reason: str) -> dict[str, Any]:
    try:
        body = json.dumps(event, default=str)
    except (ValueError, TypeError, RecursionError):
        # Too deep to serialise (the Lambda runtime could not even have parsed it): the envelope says
        # which event it was, so it can be found and re-sent.
        envelope = (
            {k: event.get(k) for k in _ENVELOPE if isinstance(event.get(k), str)} if isinstance(event, Mapping) else {}
        )
        body = json.dumps({**envelope, "detail": "(not kept: nested too deeply to store)"})
    body = body.encode("utf-8", "backslashreplace").decode("utf-8")
    detail_type = event.get("detail-type") if isinstance(event, Mapping) else None
    attributes = {"detail_type": {"StringValue": printable(detail_type)}} if isinstance(detail_type, str) else None
    park(get_settings().require("events_dlq_url"), body, attributes, reason)
    metrics.add_metric(name="BusEventsParked", unit=MetricUnit.Count, value=1)
    logger.error("bus event parked in the events DLQ", reason=reason)
    return {"status": "parked", "reason": reason}


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        # Field names and pydantic's wording only: the offending value is never echoed back.
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'detail'}: {e['msg']}" for e in exc.errors())
        return f"detail does not validate: {problems}"
    if isinstance(exc, RecursionError):
        return "event is nested too deeply"
    return str(exc)
