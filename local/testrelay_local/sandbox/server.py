"""HTTP plumbing: a threading HTTP/1.1 server that hands each request to a dispatch function."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from testrelay_local.sandbox.messages import Request, Response

Dispatch = Callable[[Request], Response]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in one segment: separate small writes meet delayed ACKs and cost ~40 ms a call.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True
    # Idle keep-alive connections are dropped after this many seconds so their threads end.
    timeout = 30

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        server = cast(SandboxHttpServer, self.server)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        try:
            response = server.dispatch(request)
        except Exception:
            traceback.print_exc(file=sys.stderr)
            response = Response.of_text(500, "sandbox failure:\n" + traceback.format_exc())
        if response.drop:
            # The connection drops before any answer: the client cannot tell whether the call was applied.
            self.close_connection = True
            return
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (typically on an injected time-out); nobody is left to answer.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        if cast(SandboxHttpServer, self.server).log_requests:
            super().log_message(format, *args)


class SandboxHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], dispatch: Dispatch, log_requests: bool = False) -> None:
        super().__init__(address, _Handler)
        self.dispatch = dispatch
        self.log_requests = log_requests
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="vendor-sandbox", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stops accepting, then closes open keep-alive connections so no client hangs on a dead server."""
        self.shutdown()
        self.server_close()
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join()
