"""POST /webhooks/{provider}: verify, normalise, route and enqueue; answers in milliseconds.
POST /reports/junit/{route}[/uploads[/{id}]|/done]: JUnit reports in (testrelay.relay.report_intake)."""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

from testrelay.aws.queue import EnqueueFailed
from testrelay.aws.secrets import SecretsUnavailable
from testrelay.errors import ConfigurationError
from testrelay.observability import lambda_entry, logger
from testrelay.relay.intake import Answer, receive
from testrelay.relay.report_intake import finish_run, finish_upload, receive_report, start_upload

app = APIGatewayHttpResolver()


def _json(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body))


def _raw_body() -> bytes:
    # Signatures cover the exact bytes the CI sent, so the body is never re-serialised.
    event = app.current_event
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else body.encode("utf-8")


def _answer(answer: Answer) -> Response[str]:
    return _json(answer.status, answer.body)


@app.post("/webhooks/<provider>")
def webhook(provider: str) -> Response[str]:
    return _answer(receive(provider, dict(app.current_event.headers), _raw_body()))


@app.post("/reports/junit/<route>")
def junit_report(route: str) -> Response[str]:
    query = dict(app.current_event.query_string_parameters or {})
    return _answer(receive_report(route, dict(app.current_event.headers), query, _raw_body()))


@app.post("/reports/junit/<route>/uploads")
def junit_upload(route: str) -> Response[str]:
    return _answer(start_upload(route, dict(app.current_event.headers), _raw_body()))


@app.post("/reports/junit/<route>/uploads/<upload_id>")
def junit_upload_done(route: str, upload_id: str) -> Response[str]:
    return _answer(finish_upload(route, upload_id, dict(app.current_event.headers), _raw_body()))


@app.post("/reports/junit/<route>/done")
def junit_run_done(route: str) -> Response[str]:
    return _answer(finish_run(route, dict(app.current_event.headers), _raw_body()))


@app.exception_handler(ConfigurationError)  # type: ignore[untyped-decorator]
def configuration_fault(exc: ConfigurationError) -> Response[str]:
    logger.error("configuration fault", error=str(exc))
    return _json(500, {"status": "error", "message": "testrelay is misconfigured; see its logs"})


@app.exception_handler(EnqueueFailed)  # type: ignore[untyped-decorator]
def enqueue_failed(exc: EnqueueFailed) -> Response[str]:
    logger.error("jobs not enqueued", error=str(exc))
    return _json(503, {"status": "error", "message": "jobs could not be queued; redeliver later"})


@app.exception_handler(SecretsUnavailable)  # type: ignore[untyped-decorator]
def secrets_unavailable(exc: SecretsUnavailable) -> Response[str]:
    logger.error("secrets unavailable", error=str(exc))
    return _json(503, {"status": "error", "message": "testrelay cannot read its secrets now; redeliver later"})


@lambda_entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
