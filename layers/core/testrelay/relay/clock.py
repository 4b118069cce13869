"""The clock the relay times Testsigma runs by: when a run was triggered, when to look at it next,
when its deadline passes.

Wall-clock epoch seconds, the clock Lambda hosts and Step Functions share (a Wait state's timestamp
is read against it). One function so the local runtime's simulated time can stand in for it, letting
a 30-minute run play out in seconds (testrelay_local.sim_clock)."""

from __future__ import annotations

import time


def now() -> float:
    return time.time()
