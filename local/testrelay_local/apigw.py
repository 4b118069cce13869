"""API Gateway HTTP API (payload format 2.0) events, as the real service builds them from a request."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

TEXT_TYPES = ("application/json", "text/", "application/x-www-form-urlencoded", "application/xml")


def http_api_event(
    method: str, path: str, headers: Mapping[str, str], body: bytes, query: str = "", route_key: str | None = None
) -> dict[str, Any]:
    lowered = {name.lower(): value for name, value in headers.items()}
    content_type = lowered.get("content-type", "")
    is_text = any(content_type.startswith(kind) for kind in TEXT_TYPES)
    try:
        text_body = body.decode("utf-8") if is_text else None
    except UnicodeDecodeError:
        text_body = None
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": route_key or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        # API Gateway joins repeated parameters with commas, and leaves the key out when there is no query.
        **({"queryStringParameters": {k: ",".join(v) for k, v in parse_qs(query).items()}} if query else {}),
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": lowered.get("host", "localhost"),
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": route_key or f"{method} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        # Like API Gateway: text bodies pass as-is, anything else base64-encoded.
        "body": text_body if text_body is not None else base64.b64encode(body).decode(),
        "isBase64Encoded": text_body is None,
    }
