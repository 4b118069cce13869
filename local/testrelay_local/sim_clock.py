"""Simulated time: one clock, running `1 / time_scale` times faster than the wall clock, read by the
relay (testrelay.relay.clock), by the sandbox's Testsigma runs and by the interpreter's Wait states.

The interpreter already scales every sleep by `time_scale` (asl_clock); what it does not scale is
*now*. A Wait state's timestamp, a run's trigger time, its deadline and the sandbox's run progress all
compare against now, so with this clock a 30-minute run, its timestamps and its deadline play out in
`1800 * time_scale` seconds, in proportion. Wall-clock epoch seconds at the moment the clock is made,
then faster.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from unittest import mock

from testrelay.relay import clock as relay_clock


class SimulatedClock:
    def __init__(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError(f"simulated time needs a time_scale > 0, got {time_scale}")
        self.time_scale = time_scale
        self._origin = time.time()

    def now(self) -> float:
        return self._origin + (time.time() - self._origin) / self.time_scale

    def at(self, moment: datetime) -> float:
        """Simulated epoch seconds of a wall-clock moment (e.g. a history event's timestamp)."""
        real = moment.timestamp() if moment.tzinfo else moment.replace(tzinfo=UTC).timestamp()
        return self._origin + (real - self._origin) / self.time_scale

    @contextmanager
    def installed(self) -> Iterator[None]:
        """The relay's clock reads this one for the duration of the block."""
        with mock.patch.object(relay_clock, "now", self.now):
            yield
