"""The generic hook's body (README "Generic webhook"): only `repository` and `outcome` are required."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Outcome = Literal[
    "success",
    "failure",
    "unstable",
    "cancelled",
    "skipped",
    "timed_out",
    "error",
    "neutral",
    "action_required",
    "stale",
]


class GenericHookBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: str = Field(min_length=1, max_length=300)
    outcome: Outcome
    event: str = Field(default="pipeline", min_length=1, max_length=100)
    branch: str | None = Field(default=None, max_length=300)
    commit_sha: str | None = Field(default=None, max_length=100)
    pipeline_id: str | None = Field(default=None, max_length=200)
    pipeline_name: str = Field(default="", max_length=300)
    run_number: int | None = Field(default=None, ge=0)
    run_url: str | None = Field(default=None, max_length=2000)
    delivery_id: str | None = Field(default=None, min_length=1, max_length=200)
    testsigma_run_id: int | None = Field(default=None, gt=0)
