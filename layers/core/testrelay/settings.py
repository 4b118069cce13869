"""Runtime settings, read from the environment into one validated model when first needed."""

from __future__ import annotations

import os
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from testrelay.errors import ConfigurationError


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

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
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    # boto3 clients (aws/clients.py): each function's budget; the webhook's template sets 1 s / 2 s / 2.
    aws_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    aws_read_timeout_seconds: float = Field(default=10.0, gt=0)
    aws_call_attempts: int = Field(default=3, ge=1, le=10)
    secrets_max_age_seconds: int = Field(default=300, ge=0)
    # Results larger than this (serialised JSON) travel through S3 instead of the state payload,
    # keeping far below Step Functions' 256 KB limit.
    inline_results_limit_bytes: int = Field(default=32_000, ge=0)
    # Collection and write-back hold one page / one part of results at a time, never the whole set.
    testsigma_results_page_size: int = Field(default=500, ge=1)
    results_part_size: int = Field(default=5000, ge=1)
    # A write-back invocation stops starting batches after this long (or near its Lambda time-out),
    # returns "more", and the state machine invokes it again to resume from the checkpoint.
    write_back_slice_seconds: float = Field(default=600.0, gt=0)
    # How long a read-back (what a target holds, read after an unknown outcome) keeps retrying pages
    # that fail transiently (5xx, time-out, throttle) before the target fails; any page read resets it.
    write_back_outage_seconds: float = Field(default=900.0, gt=0)
    # Vendor calls one write-back invocation keeps on their way at once (each paced by the rate budget).
    write_back_in_flight: int = Field(default=4, ge=1, le=16)
    # Vendor rate limits, paced at `*_rate_pace` of the documented figure. `shared`: one budget per
    # vendor account for every concurrent execution (an item of RATE_BUDGET_TABLE, default the
    # ledger); `process`: each process paces itself (no table needed, not safe for concurrent jobs).
    rate_budget: Literal["shared", "process"] = "shared"
    rate_budget_table: str | None = None
    rate_budget_lease: int = Field(default=4, ge=1, le=100)
    rate_budget_fallback_share: int = Field(default=4, ge=1)
    browserstack_tm_rate_limit: int = Field(default=300, ge=1)
    browserstack_tm_rate_period_seconds: float = Field(default=60.0, gt=0)
    browserstack_tm_rate_pace: float = Field(default=0.95, gt=0, le=1)
    # The documented pause after a 429 that does not say how long.
    browserstack_tm_throttle_wait_seconds: float = Field(default=60.0, ge=0)
    testsigma_tm_rate_limit: int = Field(default=10, ge=1)
    testsigma_tm_rate_period_seconds: float = Field(default=1.0, gt=0)
    testsigma_tm_rate_pace: float = Field(default=0.95, gt=0, le=1)

    def require(self, name: str) -> str:
        value = getattr(self, name)
        if not value:
            raise ConfigurationError(f"environment variable {name.upper()} is not set")
        return str(value)


@cache
def get_settings() -> Settings:
    fields = Settings.model_fields
    values = {name: os.environ[name.upper()] for name in fields if os.environ.get(name.upper())}
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        raise ConfigurationError(f"invalid settings: {problems}") from exc
