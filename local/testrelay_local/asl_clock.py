"""A time scale for the sleeps of moto's ASL interpreter (Wait states and Retry intervals).

Pinned to moto 5.2.5, where the interpreter sleeps in exactly two places:
- ``WaitFunction._wait_interval`` (moto/stepfunctions/parser/asl/component/state/wait/wait_function/
  wait_function.py) waits on ``env.program_state_event`` for the seconds of every Wait state
  (Seconds, SecondsPath, Timestamp, TimestampPath all go through it). Its re-entry loop compares
  whole elapsed seconds, so a fractional wait would never finish: it is replaced, not wrapped.
- ``RetrierDecl._eval_body`` (.../asl/component/common/retry/retrier_decl.py) calls ``time.sleep``
  with the computed interval (backoff, MaxDelaySeconds and jitter applied). That module uses
  ``time`` for nothing else, so its ``time`` name is replaced by an object whose ``sleep`` scales.
Task timeouts and heartbeats are left alone: they bound real work done by the handlers.

A Wait state's Timestamp/TimestampPath becomes seconds in ``Timestamp._get_wait_seconds``
(.../wait/wait_function/timestamp.py), which subtracts ``datetime.now()``, the host's *local* time,
from a UTC timestamp and truncates to whole seconds: it is replaced by the UTC difference against
the clock's ``now`` (the wall clock, or the local runtime's simulated time), in fractional seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC
from types import SimpleNamespace
from unittest import mock

from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.timestamp import Timestamp
from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
from moto.stepfunctions.parser.asl.eval.environment import Environment


class InterpreterClock:
    """Scales the interpreter's sleeps: 0.0 never sleeps, 1.0 sleeps as long as AWS would."""

    def __init__(self, scale: float, now: Callable[[], float] = time.time) -> None:
        self._scale = _checked(scale)
        self._now = now
        # Set on shutdown so that executions still sleeping wind down at once.
        self._released = threading.Event()

    @property
    def scale(self) -> float:
        return self._scale

    @scale.setter
    def scale(self, value: float) -> None:
        # Read at every sleep, so a change applies to the next Wait or Retry already.
        self._scale = _checked(value)

    def release(self) -> None:
        """Ends every scaled sleep now and makes later ones return at once, until installed again."""
        self._released.set()

    def sleep(self, seconds: float) -> None:
        scaled = seconds * self._scale
        if scaled > 0:
            self._released.wait(scaled)

    def wait_state(self, env: Environment, seconds: float) -> None:
        deadline = time.monotonic() + seconds * self._scale
        # program_state_event is pulsed when the execution stops or fails; keep waiting through
        # pulses that leave it running, as moto's own loop does.
        while env.is_running() and not self._released.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            env.program_state_event.wait(remaining)

    @contextmanager
    def installed(self) -> Iterator[None]:
        clock = self

        def wait_interval(_wait_function: WaitFunction, env: Environment, wait_seconds: int) -> None:
            clock.wait_state(env, wait_seconds)

        def timestamp_seconds(timestamp: Timestamp, env: Environment) -> float:
            timestamp.string.eval(env=env)
            text: str = env.stack.pop()
            moment = Timestamp._from_timestamp_string(text)
            if moment is None:
                raise FailureEventException(timestamp._create_failure_event(env, text))
            return moment.replace(tzinfo=UTC).timestamp() - clock._now()

        self._released.clear()
        with ExitStack() as patches:
            patches.enter_context(mock.patch.object(WaitFunction, "_wait_interval", wait_interval))
            patches.enter_context(mock.patch.object(Timestamp, "_get_wait_seconds", timestamp_seconds))
            patches.enter_context(mock.patch.object(retrier_decl, "time", SimpleNamespace(sleep=self.sleep)))
            try:
                yield
            finally:
                self.release()


def _checked(scale: float) -> float:
    if scale < 0:
        raise ValueError(f"time_scale must be >= 0, got {scale}")
    return float(scale)
