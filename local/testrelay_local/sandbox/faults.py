"""Fault knobs: extra latency, and rules that make matching calls throttle, fail, hang, or apply and
lose their answer."""

from __future__ import annotations

import random
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from testrelay_local.sandbox.vendor import VendorName

FaultKind = Literal["throttle", "server_error", "internal_error", "timeout", "lost_answer", "lost_connection"]
"""`throttle`: the vendor's own throttle answer; `server_error`: 503, not applied; `internal_error`: a
true 500, not applied; `timeout`: hangs `timeout_sleep_s`, then 504, not applied; `lost_answer`: the
call is applied, then a 504 comes back (a gateway that gave up on it); `lost_connection`: the call is
applied, then the connection drops without an answer."""

APPLIED_FAULTS: frozenset[str] = frozenset({"lost_answer", "lost_connection"})
"""The faults of calls the vendor carries out (only the answer is lost)."""


class FaultRule(BaseModel):
    """Which calls to fault and how.

    `path` is a regular expression searched in the path relative to the vendor's base URL (for
    example `/execution_results/\\d+$` for Testsigma); empty matches every path. Without `times` and
    `rate` every matching call is faulted; `times` caps the number of faults (so alone it means "the
    first N matching calls"); `rate` faults that share of matching calls, drawn from a generator
    seeded with `seed` so a test sees the same sequence every time; `after` lets the first N matching
    calls through untouched ("fail after N calls").
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    vendor: VendorName | Literal["*"] = "*"
    method: str = "*"
    path: str = ""
    kind: FaultKind
    times: int | None = Field(default=None, ge=0)
    rate: float | None = Field(default=None, ge=0.0, le=1.0)
    seed: int = 0
    after: int = Field(default=0, ge=0, description="matching calls let through before the rule starts")

    @field_validator("method")
    @classmethod
    def _upper(cls, method: str) -> str:
        return method.upper()

    @field_validator("path")
    @classmethod
    def _compiles(cls, path: str) -> str:
        try:
            re.compile(path)
        except re.error as exc:
            raise ValueError(f"path is not a valid regular expression: {exc}") from exc
        return path

    def matches(self, vendor: VendorName, method: str, path: str) -> bool:
        return (
            self.vendor in ("*", vendor)
            and self.method in ("*", method.upper())
            and re.search(self.path, path) is not None
        )


class FaultSettings(BaseModel):
    """The whole set of knobs; setting it replaces the previous one and restarts the rules' counts."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0.0, ge=0)
    timeout_sleep_s: float = Field(default=5.0, gt=0, description="how long a `timeout` fault hangs")
    rules: list[FaultRule] = Field(default_factory=list)


class FaultInjector:
    """Decides which calls are faulted. Not thread-safe: the sandbox calls it under its lock."""

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self.settings = settings or FaultSettings()
        self._injected = [0] * len(self.settings.rules)
        self._seen = [0] * len(self.settings.rules)
        self._draws = [random.Random(rule.seed) for rule in self.settings.rules]

    def pick(self, vendor: VendorName, method: str, path: str) -> FaultKind | None:
        """The fault of the first rule that fires for this call, counting it, or None."""
        for index, rule in enumerate(self.settings.rules):
            if not rule.matches(vendor, method, path):
                continue
            self._seen[index] += 1
            if self._seen[index] <= rule.after:
                continue
            if rule.times is not None and self._injected[index] >= rule.times:
                continue
            if rule.rate is not None and self._draws[index].random() >= rule.rate:
                continue
            self._injected[index] += 1
            return rule.kind
        return None

    def snapshot(self) -> dict[str, Any]:
        injected: dict[str, int] = {}
        for rule, count in zip(self.settings.rules, self._injected, strict=True):
            if count:
                injected[rule.kind] = injected.get(rule.kind, 0) + count
        return {
            "latency_ms": self.settings.latency_ms,
            "timeout_sleep_s": self.settings.timeout_sleep_s,
            "rules": [
                {**rule.model_dump(), "injected": count}
                for rule, count in zip(self.settings.rules, self._injected, strict=True)
            ],
            "injected": injected,
        }
