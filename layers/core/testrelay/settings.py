"""Runtime settings, read from the environment into one validated model when first needed.

A frozen dataclass checked here rather than a pydantic model: every function reads its settings at
cold start, and the webhook's cold path imports no pydantic at all (README "Cold start")."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from functools import cache
from typing import Any

from testrelay.errors import ConfigurationError


def _bounded(default: float, *, gt: float | None = None, ge: float | None = None, le: float | None = None) -> Any:
    return field(default=default, metadata={"gt": gt, "ge": ge, "le": le})


def _one_of(default: str, *choices: str) -> Any:
    return field(default=default, metadata={"choices": choices})


@dataclass(frozen=True)
class Settings:
    ledger_table: str | None = None
    results_bucket: str | None = None
    jobs_queue_url: str | None = None
    jobs_dlq_url: str | None = None
    state_machine_arn: str | None = None
    routes_file: str | None = None
    webhook_secrets_id: str | None = None
    vendor_secrets_id: str | None = None
    # The stack's EventBridge bus (Test Run Requested in, Test Run Finished/Failed/Timed Out out), and
    # where bus events that can never become a job are parked with their reason.
    event_bus_name: str | None = None
    events_dlq_url: str | None = None
    testsigma_base_url: str = "https://app.testsigma.com/api/v1"
    testsigma_app_url: str = "https://app.testsigma.com"
    testsigma_tm_base_url: str = "https://test-management.testsigma.com/api/v1"
    github_api_url: str = "https://api.github.com"
    gitlab_api_url: str = "https://gitlab.com/api/v4"
    bitbucket_api_url: str = "https://api.bitbucket.org/2.0"
    # Regional hosts exist (e.g. the -eu and -in variants).
    browserstack_tm_base_url: str = "https://test-management.browserstack.com"
    http_timeout_seconds: float = _bounded(10.0, gt=0)
    # boto3 clients (aws/clients.py): each function's budget; the webhook's template sets 1 s / 2 s / 2.
    aws_connect_timeout_seconds: float = _bounded(3.0, gt=0)
    aws_read_timeout_seconds: float = _bounded(10.0, gt=0)
    aws_call_attempts: int = _bounded(3, ge=1, le=10)
    secrets_max_age_seconds: int = _bounded(300, ge=0)
    # Results larger than this (serialised JSON) travel through S3 instead of the state payload,
    # keeping far below Step Functions' 256 KB limit.
    inline_results_limit_bytes: int = _bounded(32_000, ge=0)
    # Collection and write-back hold one page / one part of results at a time, never the whole set.
    testsigma_results_page_size: int = _bounded(500, ge=1)
    results_part_size: int = _bounded(5000, ge=1)
    # A write-back invocation stops starting batches after this long (or near its Lambda time-out),
    # returns "more", and the state machine invokes it again to resume from the checkpoint.
    write_back_slice_seconds: float = _bounded(600.0, gt=0)
    # How long a read-back (what a target holds, read after an unknown outcome) keeps retrying pages
    # that fail transiently (5xx, time-out, throttle) before the target fails; any page read resets it.
    write_back_outage_seconds: float = _bounded(900.0, gt=0)
    # Vendor calls one write-back invocation keeps on their way at once (each paced by the rate budget).
    write_back_in_flight: int = _bounded(4, ge=1, le=16)
    # Vendor rate limits, paced at `*_rate_pace` of the documented figure. `shared`: one budget per
    # vendor account for every concurrent execution (an item of RATE_BUDGET_TABLE, default the
    # ledger); `process`: each process paces itself (no table needed, not safe for concurrent jobs).
    rate_budget: str = _one_of("shared", "shared", "process")
    rate_budget_table: str | None = None
    rate_budget_lease: int = _bounded(4, ge=1, le=100)
    rate_budget_fallback_share: int = _bounded(4, ge=1)
    browserstack_tm_rate_limit: int = _bounded(300, ge=1)
    browserstack_tm_rate_period_seconds: float = _bounded(60.0, gt=0)
    browserstack_tm_rate_pace: float = _bounded(0.95, gt=0, le=1)
    # The documented pause after a 429 that does not say how long.
    browserstack_tm_throttle_wait_seconds: float = _bounded(60.0, ge=0)
    testsigma_tm_rate_limit: int = _bounded(10, ge=1)
    testsigma_tm_rate_period_seconds: float = _bounded(1.0, gt=0)
    # 0.93, not 0.95: at 0.95 the 26 ms a slot's arrival may jitter was exceeded on a loaded host
    # (2 throttles in 2,003 calls); 0.93 leaves 38 ms and still uses over 90 % of the limit.
    testsigma_tm_rate_pace: float = _bounded(0.93, gt=0, le=1)

    def require(self, name: str) -> str:
        value = getattr(self, name)
        if not value:
            raise ConfigurationError(f"environment variable {name.upper()} is not set")
        return str(value)


def _parse(kind: type, text: str) -> Any:
    """An environment value as the field's kind (the kind of its default; text where it has none)."""
    if kind is int:
        return int(text.strip().replace("_", ""))
    if kind is float:
        number = float(text)
        if not math.isfinite(number):
            raise ValueError
        return number
    return text


def _problem(value: Any, metadata: Any) -> str | None:
    choices = metadata.get("choices")
    if choices and value not in choices:
        return "must be one of " + ", ".join(repr(choice) for choice in choices)
    gt, ge, le = metadata.get("gt"), metadata.get("ge"), metadata.get("le")
    if gt is not None and not value > gt:
        return f"must be greater than {gt}"
    if ge is not None and not value >= ge:
        return f"must be at least {ge}"
    if le is not None and not value <= le:
        return f"must be at most {le}"
    return None


@cache
def get_settings() -> Settings:
    values: dict[str, Any] = {}
    problems = []
    for setting in fields(Settings):
        text = os.environ.get(setting.name.upper())
        if not text:
            continue
        kind = type(setting.default) if setting.default is not None else str
        try:
            value = _parse(kind, text)
        except ValueError:
            problems.append(f"{setting.name.upper()}: must be {'an integer' if kind is int else 'a number'}")
            continue
        problem = _problem(value, setting.metadata)
        if problem:
            problems.append(f"{setting.name.upper()}: {problem}")
        values[setting.name] = value
    if problems:
        raise ConfigurationError(f"invalid settings: {'; '.join(problems)}")
    return Settings(**values)
