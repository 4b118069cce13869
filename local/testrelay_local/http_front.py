"""Plays the HTTP API in front of WebhookFunction (webhooks and JUnit reports): each request becomes a
payload-2.0 event."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from testrelay_local.apigw import http_api_event
from testrelay_local.lambda_router import LocalLambdaContext

# The HttpApi routes of WebhookFunction in template.yaml: path pattern -> route key.
ROUTES = (
    (re.compile(r"^/webhooks/[^/]+$"), "POST /webhooks/{provider}"),
    (re.compile(r"^/reports/junit/[^/]+$"), "POST /reports/junit/{route}"),
    (re.compile(r"^/reports/junit/[^/]+/uploads$"), "POST /reports/junit/{route}/uploads"),
    (re.compile(r"^/reports/junit/[^/]+/done$"), "POST /reports/junit/{route}/done"),
    (re.compile(r"^/reports/junit/[^/]+/uploads/[^/]+$"), "POST /reports/junit/{route}/uploads/{upload_id}"),
)
MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit


class HttpFront:
    def __init__(self, handler: Callable[[Any, Any], Any], host: str = "127.0.0.1", port: int = 0) -> None:
        self._handler = handler
        front = self

        class _Request(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                front._serve(self)

            def do_GET(self) -> None:
                front._serve(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), _Request)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-front", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        path, _, query = request.path.partition("?")
        length = int(request.headers.get("Content-Length") or 0)
        route_key = next((key for pattern, key in ROUTES if pattern.match(path)), None)
        if request.command != "POST" or route_key is None:
            self._reply(request, 404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
            return
        if length > MAX_BODY:
            self._reply(request, 413, {"content-type": "application/json"}, b'{"message":"Request Entity Too Large"}')
            return
        body = request.rfile.read(length)
        event = http_api_event("POST", path, dict(request.headers.items()), body, query, route_key)
        context = LocalLambdaContext(
            function_name="WebhookFunction",
            function_arn="arn:aws:lambda:us-east-1:123456789012:function:WebhookFunction",
            memory_limit_in_mb=256,
            timeout_seconds=10,
        )
        try:
            answer = self._handler(event, context)
        except Exception as exc:  # API Gateway turns an unhandled Lambda error into a 500
            self._reply(
                request,
                500,
                {"content-type": "application/json"},
                json.dumps({"message": "Internal Server Error", "error": type(exc).__name__}).encode(),
            )
            return
        raw = answer.get("body") or ""
        payload = base64.b64decode(raw) if answer.get("isBase64Encoded") else str(raw).encode()
        self._reply(request, int(answer.get("statusCode", 200)), answer.get("headers") or {}, payload)

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() != "content-length":
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)
