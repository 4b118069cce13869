"""A webhook delivery in, jobs on the queue out: verify, normalise, route, enqueue. No vendor calls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from testrelay.aws.queue import EnqueueFailed, send_jobs
from testrelay.aws.secrets import webhook_secret
from testrelay.ci.base import Ignored
from testrelay.ci.boundary import parse_delivery
from testrelay.ci.registry import PROVIDERS
from testrelay.errors import AuthenticationFailed, InvalidPayload
from testrelay.models.job_message import job_message
from testrelay.observability import correlate, logger, metrics
from testrelay.route_matching import match_routes
from testrelay.routes_index import load_indexed_routes
from testrelay.settings import get_settings


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any] = field(default_factory=dict)


def receive(provider_name: str, headers: Mapping[str, str], body: bytes) -> Answer:
    headers = {name.lower(): value for name, value in headers.items()}
    provider = PROVIDERS.get(provider_name)
    if provider is None:
        return Answer(404, {"status": "unknown_provider", "message": f"no webhook for {provider_name!r}"})

    try:
        provider.authenticate(headers, body, webhook_secret(provider_name))
    except AuthenticationFailed as exc:
        metrics.add_metric(name="WebhookRejected", unit=MetricUnit.Count, value=1)
        logger.warning("webhook rejected", provider=provider_name, reason=str(exc))
        return Answer(401, {"status": "unauthorized", "message": str(exc)})

    try:
        parsed = parse_delivery(provider, headers, body)
    except InvalidPayload as exc:
        logger.warning("webhook body invalid", provider=provider_name, reason=str(exc))
        metrics.add_metric(name="WebhookInvalid", unit=MetricUnit.Count, value=1)
        if provider.invalid_payload_status < 400:
            # The sender is authenticated, so this is not an attack; a 4xx would count towards the
            # hook being disabled for good (GitLab), for a body it will never send again.
            return Answer(
                provider.invalid_payload_status, {"status": "ignored", "reason": f"body does not parse: {exc}"}
            )
        return Answer(400, {"status": "invalid", "message": str(exc)})

    if isinstance(parsed, Ignored):
        logger.info("webhook ignored", provider=provider_name, event=parsed.event, reason=parsed.reason)
        metrics.add_metric(name="WebhookIgnored", unit=MetricUnit.Count, value=1)
        return Answer(200, {"status": "ignored", "event": parsed.event, "reason": parsed.reason})

    event = parsed
    correlate(delivery=event.delivery_key)
    routes = load_indexed_routes(get_settings().require("routes_file"))
    matched, reasons = match_routes(routes, event)
    delivery: dict[str, Any] = {"delivery": event.delivery_key, "event": event.event, "repository": event.repository}
    if not matched:
        reason = "no route matches this event" + (": " + "; ".join(reasons) if reasons else "")
        logger.info("webhook matched no route", **delivery, reasons=reasons)
        metrics.add_metric(name="WebhookIgnored", unit=MetricUnit.Count, value=1)
        return Answer(200, {"status": "ignored", **delivery, "reason": reason})

    jobs = [job_message(event, route.name, route.action) for route in matched]
    if len(jobs) == 1:
        correlate(job_id=jobs[0].id, route=matched[0].name)
    try:
        send_jobs(get_settings().require("jobs_queue_url"), jobs)
    except EnqueueFailed as exc:
        # The one 5xx a CI gets for a delivery (README "answers"): job ids are deterministic, so the
        # jobs of a batch that did go through are not started again by the redelivery.
        logger.error("jobs not enqueued", **delivery, error=str(exc))
        return Answer(503, {"status": "error", "message": "jobs could not be queued; redeliver later"})
    logger.info("jobs enqueued", **delivery, jobs=[job.id for job in jobs])
    metrics.add_metric(name="JobsEnqueued", unit=MetricUnit.Count, value=len(jobs))
    return Answer(202, {"status": "accepted", **delivery, "jobs": [job.id for job in jobs]})
