"""Routes moto's docker-less Lambda invocations to Python callables in this process.

Pinned to moto 5.2.5. With ``{"lambda": {"use_docker": false}}`` every Invoke request (boto3's
``lambda.invoke`` and the Step Functions interpreter's ``arn:aws:states:::lambda:invoke`` /
function-ARN Task states alike) ends in ``moto.awslambda_simple.models.LambdaSimpleBackend.invoke``,
which normally echoes the payload. ``LambdaResponse.invoke`` (moto/awslambda/responses.py) turns
whatever that method returns into the HTTP answer and keeps the headers it writes into
``response_headers``: that single method is the narrowest point where a real handler can run and
where a function error can be signalled the way real Lambda does (``X-Amz-Function-Error``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeAlias
from unittest import mock

from aws_lambda_powertools.utilities.typing import LambdaContext
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.awslambda_simple.models import LambdaSimpleBackend

# Handlers annotate their context with Powertools' LambdaContext; a callable parameter accepts only
# that class or a subclass, so the context we hand over is one.
LambdaContextLike: TypeAlias = LambdaContext
LambdaHandler: TypeAlias = Callable[[dict[str, Any], LambdaContextLike], Any]

_LOG = logging.getLogger(__name__)

# How long uninstalling waits for Event (asynchronous) invocations still running.
_ASYNC_DRAIN_SECONDS = 10.0
# What the Lambda Python runtime reports when the handler cannot be found.
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
# What the Lambda Python runtime reports when the return value is not JSON-serialisable.
MARSHAL_ERROR = "Runtime.MarshalError"


class LocalLambdaContext(LambdaContext):
    """The context object of one invocation, shaped like the Lambda Python runtime's."""

    def __init__(self, *, function_name: str, function_arn: str, memory_limit_in_mb: int, timeout_seconds: int) -> None:
        self._function_name = function_name
        self._function_version = "$LATEST"
        self._invoked_function_arn = function_arn
        self._memory_limit_in_mb = memory_limit_in_mb
        self._aws_request_id = str(uuid.uuid4())
        self._log_group_name = f"/aws/lambda/{function_name}"
        self._log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        # Powertools declares this static (it has no clock); ours counts down from the function timeout.
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LambdaRouter:
    """Maps function names to in-process handlers while installed over moto's simple Lambda backend."""

    def __init__(self) -> None:
        self._handlers: dict[str, LambdaHandler] = {}
        self._lock = threading.Lock()
        self._async_invocations: list[threading.Thread] = []
        self._failures: dict[str, list[tuple[str, str]]] = {}

    def fail_next(self, function_name: str, error_type: str, message: str = "", times: int = 1) -> None:
        """The next `times` invocations of the function fail as the Lambda service reports a function
        it killed (out of memory, time-out, a crashed runtime): `error_type` without running the
        handler (`Lambda.Unknown`, `Runtime.ExitError`, `Sandbox.Timedout`, ...)."""
        with self._lock:
            self._failures.setdefault(function_name, []).extend([(error_type, message)] * times)

    def register(self, function_name: str, handler: LambdaHandler) -> None:
        with self._lock:
            self._handlers[function_name] = handler

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Routes every Invoke handled by moto to this router for the duration of the block."""

        router = self

        def invoke(
            backend: LambdaBackend,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: dict[str, str],
        ) -> bytes:
            # Resolving through the backend keeps moto's answers for unknown names, ARNs and qualifiers.
            function = backend.get_function(function_name, qualifier)
            payload = router._invoke(function, body, headers, response_headers)
            response_headers["Content-Length"] = str(len(payload))
            return payload

        with mock.patch.object(LambdaSimpleBackend, "invoke", invoke):
            try:
                yield
            finally:
                self._join_async_invocations(_ASYNC_DRAIN_SECONDS)

    def _invoke(self, function: LambdaFunction, body: Any, headers: Any, response_headers: dict[str, str]) -> bytes:
        event = _parse_event(body)
        invocation_type = headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        response_headers["x-amz-executed-version"] = "$LATEST"
        if invocation_type == "DryRun":
            return b""
        if invocation_type == "Event":
            # Real Lambda queues the event and answers 202 at once; the handler runs on its own.
            thread = threading.Thread(
                target=self._run, args=(function, event), name=f"lambda-event-{function.function_name}"
            )
            with self._lock:
                self._async_invocations.append(thread)
            thread.start()
            return b""
        payload, function_error = self._run(function, event)
        if function_error:
            response_headers["x-amz-function-error"] = "Unhandled"
        return payload

    def _run(self, function: LambdaFunction, event: Any) -> tuple[bytes, bool]:
        """Runs the handler; returns the response payload and whether it is a function error."""
        with self._lock:
            handler = self._handlers.get(function.function_name)
            pending = self._failures.get(function.function_name)
            failure = pending.pop(0) if pending else None
        context = LocalLambdaContext(
            function_name=function.function_name,
            function_arn=function.function_arn,
            memory_limit_in_mb=int(function.memory_size),
            timeout_seconds=int(function.timeout),
        )
        if failure is not None:
            error_type, message = failure
            return _error_payload(error_type, message or f"{function.function_name} was stopped", context, []), True
        if handler is None:
            message = (
                f"Handler '{function.handler}' missing: no in-process handler is registered for "
                f"'{function.function_name}' (use LocalAws.register_lambda)"
            )
            return _error_payload(HANDLER_NOT_FOUND, message, context, []), True
        try:
            result = handler(event, context)
        except Exception as exc:
            _LOG.info("Lambda %s raised %s", function.function_name, type(exc).__name__, exc_info=exc)
            # The handler's own frames, as the runtime reports them (this module's frame is not one).
            frames = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
            return _error_payload(type(exc).__name__, str(exc), context, frames), True
        try:
            return json.dumps(result).encode("utf-8"), False
        except (TypeError, ValueError) as exc:
            message = f"Unable to marshal response: {exc}"
            return _error_payload(MARSHAL_ERROR, message, context, []), True

    def _join_async_invocations(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            threads, self._async_invocations = self._async_invocations, []
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                _LOG.warning("Asynchronous invocation %s still running after shutdown", thread.name)


def _parse_event(body: str | bytes | None) -> Any:
    if not body:
        return {}
    try:
        return json.loads(body)
    except ValueError as exc:
        raise LambdaClientError(
            "InvalidRequestContentException", f"Could not parse request body into json: {exc}"
        ) from exc


def _error_payload(error_type: str, message: str, context: LocalLambdaContext, stack_trace: list[str]) -> bytes:
    body: Mapping[str, Any] = {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": context.aws_request_id,
        "stackTrace": stack_trace,
    }
    return json.dumps(body).encode("utf-8")
