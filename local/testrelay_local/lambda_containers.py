"""Lambda execution environments as separate processes, for one function of the local runtime.

In-process, every invocation of a function shares the process's memory: module-level caches, the
per-process rate limiter, warm clients. Real Lambda runs concurrent invocations in separate
execution environments that share nothing but AWS and the network. A `ContainerPool` gives one
function that isolation: each invocation runs in one of `size` worker processes (spawned, so they
share no state with this one), one invocation per process at a time, and a worker is reused warm
by later invocations, as Lambda reuses an environment. Workers see the environment variables of
this process at their first invocation (the runtime's settings, moto's endpoint).

Errors cross back with their class name, so the state machine's Retry/Catch rules match them as
they match the Lambda runtime's `errorType`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import threading
import time
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

_READY = "ready"


def _serve(connection: Connection, code_uri: str) -> None:
    """A worker: loads the handler once, then runs one invocation per message until told to stop."""
    from testrelay_local.functions import load_handler
    from testrelay_local.lambda_router import LocalLambdaContext

    handler = load_handler(code_uri)
    connection.send(_READY)
    while True:
        message = connection.recv()
        if message is None:
            return
        event, function_name, function_arn, memory, remaining_s = message
        context = LocalLambdaContext(
            function_name=function_name,
            function_arn=function_arn,
            memory_limit_in_mb=memory,
            timeout_seconds=int(remaining_s),
        )
        try:
            connection.send(("ok", handler(event, context)))
        except Exception as exc:  # every error goes back to the caller, by class name
            connection.send(("error", type(exc).__name__, str(exc)))


class _Worker:
    def __init__(self, code_uri: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.connection, child = context.Pipe()
        self.process: BaseProcess = context.Process(target=_serve, args=(child, code_uri), daemon=True)
        self.process.start()
        child.close()

    def ready(self, timeout: float) -> None:
        if not self.connection.poll(timeout) or self.connection.recv() != _READY:
            raise RuntimeError("a Lambda container did not start")


class ContainerPool:
    """Callable like a handler; runs each invocation in a worker process of its own."""

    def __init__(self, code_uri: str, size: int) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one container")
        self.code_uri = code_uri
        self.size = size
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self.invocations = 0

    def _start(self) -> None:
        with self._lock:
            if self._workers:
                return
            workers = [_Worker(self.code_uri) for _ in range(self.size)]
            for worker in workers:
                worker.ready(timeout=120)
                self._idle.put(worker)
            self._workers = workers

    def __call__(self, event: Any, context: Any) -> Any:
        self._start()
        worker = self._idle.get()
        try:
            with self._lock:
                self.invocations += 1
            remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else 900
            name = getattr(context, "function_name", "function")
            arn = getattr(context, "invoked_function_arn", "arn:aws:lambda:us-east-1:123456789012:function:function")
            memory = int(getattr(context, "memory_limit_in_mb", 512))
            worker.connection.send((event, name, arn, memory, max(1, remaining)))
            answer = worker.connection.recv()
        finally:
            self._idle.put(worker)
        if answer[0] == "ok":
            return answer[1]
        _, error_type, message = answer
        raise type(error_type, (Exception,), {})(message)

    def stop(self) -> None:
        with self._lock:
            workers, self._workers = self._workers, []
        for worker in workers:
            with contextlib.suppress(BrokenPipeError, OSError):
                worker.connection.send(None)
        deadline = time.monotonic() + 10
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.terminate()
