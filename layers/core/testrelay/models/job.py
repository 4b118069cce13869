"""A job: one route's work for one CI event (or schedule firing), as it travels on the queue."""

from __future__ import annotations

import json
import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from testrelay.models.ci_event import CiEvent
from testrelay.models.job_message import job_fields
from testrelay.models.routes import RouteAction


class Job(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")
    kind: Literal["trigger", "result_sync", "junit"] = "trigger"
    route: RouteAction
    event: CiEvent
    testsigma_run_id: int | None = Field(default=None, description="set for result-sync jobs")
    report_key: str | None = Field(default=None, description="S3 key of the JUnit report, for junit jobs")
    run_key: str | None = Field(
        default=None, description="junit jobs gathering a sharded CI run's reports: the run key they share"
    )
    created_at: float = Field(default_factory=time.time)

    @classmethod
    def for_event(cls, event: CiEvent, route: RouteAction) -> Job:
        """A trigger job, or a result-sync job when the event names a Testsigma run that already exists."""
        return cls.model_validate(job_fields(event, route, route.name))

    def message_body(self) -> str:
        return self.model_dump_json()


class RetryRequest(BaseModel):
    """ "Run job `retry_of` again as attempt `attempt`" (from `testrelay retry`, or any automation that
    puts it on the jobs queue). The attempt is named so a redelivered request starts nothing twice."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    retry_of: str = Field(pattern=r"^[A-Za-z0-9_-]{1,80}$")
    attempt: int = Field(ge=2, le=99)
    requested_at: float = Field(default_factory=time.time)


def parse_message(body: str) -> Job | RetryRequest:
    """A queued message: a retry request when it says `retry_of`, else a job (ValueError when neither)."""
    decoded = json.loads(body)  # JSONDecodeError is a ValueError
    if isinstance(decoded, dict) and "retry_of" in decoded:
        return RetryRequest.model_validate(decoded)
    return Job.model_validate(decoded)
