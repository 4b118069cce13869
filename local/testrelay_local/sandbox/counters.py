"""Per vendor and endpoint: how many calls arrived, what they were answered, which were faulted."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _EndpointCount:
    calls: int = 0
    responses: Counter[int] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    first: float | None = None
    last: float = 0.0
    """Epoch seconds of the first and last arrival: when each phase of a write-back ran."""


class RequestCounters:
    """Not thread-safe: the sandbox records under its lock."""

    def __init__(self) -> None:
        self._counts: dict[str, dict[str, _EndpointCount]] = {}

    def record(self, vendor: str, endpoint: str, status: int, fault: str | None) -> None:
        count = self._counts.setdefault(vendor, {}).setdefault(endpoint, _EndpointCount())
        count.calls += 1
        count.last = time.time()
        count.first = count.last if count.first is None else count.first
        count.responses[status] += 1
        if fault:
            count.faults[fault] += 1

    def snapshot(self) -> dict[str, Any]:
        return {
            vendor: {
                endpoint: {
                    "calls": count.calls,
                    "responses": {str(status): n for status, n in sorted(count.responses.items())},
                    "faults": dict(count.faults),
                    "faults_injected": sum(count.faults.values()),
                }
                for endpoint, count in endpoints.items()
            }
            for vendor, endpoints in self._counts.items()
        }

    def times(self) -> dict[str, dict[str, list[float | None]]]:
        """Per vendor and endpoint: [first, last] arrival (epoch seconds)."""
        return {
            vendor: {endpoint: [count.first, count.last] for endpoint, count in endpoints.items()}
            for vendor, endpoints in self._counts.items()
        }
