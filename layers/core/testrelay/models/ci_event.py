"""The provider-neutral description of "a CI run finished" that routes match on."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# Limits of a normalised field (README "Webhook limits"): far above what any CI sends (Git refs and
# GitHub/GitLab names stop at 255 bytes), low enough that a job message stays far below SQS's 256 KiB.
MAX_TEXT = 1024
MAX_URL = 4096
MAX_INT = 2**63 - 1  # DynamoDB and the vendors' APIs take 64-bit integers at most


def _encodable(value: object) -> object:
    # json.loads accepts a lone surrogate ("\ud800"); the job's JSON on the queue could not carry it.
    # Checked before pydantic's own string checks, so the reason names the problem.
    if not isinstance(value, str):
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("contains a lone UTF-16 surrogate, which is not text") from exc
    return value


Text = Annotated[str, Field(max_length=MAX_TEXT), BeforeValidator(_encodable)]
Url = Annotated[str, Field(max_length=MAX_URL), BeforeValidator(_encodable)]


class CiEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    provider: Text = Field(description="CI provider key, e.g. 'github'")
    event: Text = Field(description="provider event name, e.g. 'workflow_run'")
    delivery_key: Url = Field(min_length=1, description="the provider's dedupe key (a Jenkins build URL, say)")
    repository: Text = Field(min_length=1, description="owner/name or the provider's project path")
    branch: Text | None = Field(default=None, description="None for tag builds (see `tag`)")
    tag: Text | None = Field(default=None, description="the tag a tag build ran for")
    pull_request: Text | None = Field(default=None, description="the pull/merge request number the run was for")
    fork: bool = Field(default=False, description="the run's code comes from a fork of `repository`")
    head_repository: Text | None = Field(default=None, description="where a fork's code comes from")
    child_pipeline: bool = Field(
        default=False, description="a pipeline started by another pipeline of the same commit (GitLab)"
    )
    commit_sha: Text | None = None
    pipeline_id: Text | None = None
    pipeline_name: Text = ""
    run_number: int | None = Field(default=None, ge=-MAX_INT, le=MAX_INT)
    run_url: Url | None = None
    outcome: Text | None = Field(default=None, description="success, failure, cancelled, skipped, ...")
    testsigma_run_id: int | None = Field(
        default=None,
        gt=0,
        le=MAX_INT,
        description="a Testsigma run the CI already started: sync it instead of triggering",
    )

    @property
    def short_sha(self) -> str:
        return (self.commit_sha or "")[:7]
