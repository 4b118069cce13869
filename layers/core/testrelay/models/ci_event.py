"""The provider-neutral description of "a CI run finished" that routes match on."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CiEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    provider: str = Field(description="CI provider key, e.g. 'github'")
    event: str = Field(description="provider event name, e.g. 'workflow_run'")
    delivery_key: str = Field(min_length=1, description="the provider's dedupe key for this delivery")
    repository: str = Field(min_length=1, description="owner/name or the provider's project path")
    branch: str | None = None
    commit_sha: str | None = None
    pipeline_id: str | None = None
    pipeline_name: str = ""
    run_number: int | None = None
    run_url: str | None = None
    outcome: str | None = Field(default=None, description="success, failure, cancelled, skipped, ...")
    testsigma_run_id: int | None = Field(
        default=None, gt=0, description="a Testsigma run the CI already started: sync it instead of triggering"
    )

    @property
    def short_sha(self) -> str:
        return (self.commit_sha or "")[:7]
