"""POST /webhooks/{provider}: verify, normalise, route and enqueue; answers in milliseconds.
POST /reports/junit/{route}[/uploads[/{id}]|/done]: JUnit reports in (testrelay.relay.report_intake).

Five POST routes, matched here: Powertools' event_handler package would import every resolver it has
(AppSync, Bedrock, asyncio, ...) on the cold-start path of the one function a CI waits for.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from testrelay.aws.queue import EnqueueFailed
from testrelay.aws.secrets import SecretsUnavailable
from testrelay.errors import ConfigurationError
from testrelay.observability import lambda_entry, logger
from testrelay.relay.intake import Answer, receive

Route = Callable[[Mapping[str, Any], dict[str, str]], Answer]


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    return dict(event.get("headers") or {})


def _raw_body(event: Mapping[str, Any]) -> bytes:
    # Signatures cover the exact bytes the CI sent, so the body is never re-serialised.
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except (binascii.Error, ValueError):
            return b""
    return str(body).encode("utf-8", "surrogatepass")


def _webhook(event: Mapping[str, Any], params: dict[str, str]) -> Answer:
    return receive(params["provider"], _headers(event), _raw_body(event))


# The report routes import the JUnit parser and S3 helpers when first used, off the webhooks' cold path.
def _junit_report(event: Mapping[str, Any], params: dict[str, str]) -> Answer:
    from testrelay.relay.report_intake import receive_report

    query = dict(event.get("queryStringParameters") or {})
    return receive_report(params["route"], _headers(event), query, _raw_body(event))


def _junit_upload(event: Mapping[str, Any], params: dict[str, str]) -> Answer:
    from testrelay.relay.report_intake import start_upload

    return start_upload(params["route"], _headers(event), _raw_body(event))


def _junit_upload_done(event: Mapping[str, Any], params: dict[str, str]) -> Answer:
    from testrelay.relay.report_intake import finish_upload

    return finish_upload(params["route"], params["upload_id"], _headers(event), _raw_body(event))


def _junit_run_done(event: Mapping[str, Any], params: dict[str, str]) -> Answer:
    from testrelay.relay.report_intake import finish_run

    return finish_run(params["route"], _headers(event), _raw_body(event))


_SEGMENT = r"[^/]+"
ROUTES: tuple[tuple[re.Pattern[str], Route], ...] = tuple(
    (re.compile("^" + re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m.group(1)}>{_SEGMENT})", path) + "$"), route)
    for path, route in (
        ("/webhooks/{provider}", _webhook),
        ("/reports/junit/{route}", _junit_report),
        ("/reports/junit/{route}/uploads", _junit_upload),
        ("/reports/junit/{route}/uploads/{upload_id}", _junit_upload_done),
        ("/reports/junit/{route}/done", _junit_run_done),
    )
)


def _json(status: int, body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _route(event: Mapping[str, Any]) -> tuple[Route, dict[str, str]] | None:
    http = (event.get("requestContext") or {}).get("http") or {}
    if str(http.get("method") or "POST").upper() != "POST":
        return None
    path = str(event.get("rawPath") or http.get("path") or "")
    for pattern, route in ROUTES:
        matched = pattern.match(path)
        if matched:
            return route, matched.groupdict()
    return None


def resolve(event: Mapping[str, Any]) -> dict[str, Any]:
    found = _route(event)
    if found is None:
        return _json(404, {"statusCode": 404, "message": "Not found"})
    route, params = found
    try:
        answer = route(event, params)
    except ConfigurationError as exc:
        logger.error("configuration fault", error=str(exc))
        return _json(500, {"status": "error", "message": "testrelay is misconfigured; see its logs"})
    except EnqueueFailed as exc:
        logger.error("jobs not enqueued", error=str(exc))
        return _json(503, {"status": "error", "message": "jobs could not be queued; redeliver later"})
    except SecretsUnavailable as exc:
        logger.error("secrets unavailable", error=str(exc))
        return _json(503, {"status": "error", "message": "testrelay cannot read its secrets now; redeliver later"})
    return _json(answer.status, answer.body)


@lambda_entry
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return resolve(event)
