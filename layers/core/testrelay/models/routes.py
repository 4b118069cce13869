"""The routes file: which CI events trigger which Testsigma plan and where results are written.

A route is copied into every job it creates, so editing the routes file never changes a job in flight.
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from testrelay.models.execution import CaseStatus

# Values a template ({placeholder}) may use; anything else is rejected when the file loads.
TEMPLATE_FIELDS = frozenset(
    {
        "provider",
        "event",
        "repository",
        "branch",
        "sha",
        "short_sha",
        "pipeline_id",
        "pipeline_name",
        "run_number",
        "route",
        "plan_id",
        "run_id",
        "date",
    }
)

ROUTE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")

# Testsigma spells results two ways depending on the page (SUCCESS and PASSED, ...): both are accepted.
DEFAULT_RESULT_MAP: dict[str, CaseStatus] = {
    "SUCCESS": CaseStatus.PASSED,
    "PASSED": CaseStatus.PASSED,
    "FAILURE": CaseStatus.FAILED,
    "FAILED": CaseStatus.FAILED,
    "ABORTED": CaseStatus.BLOCKED,
    "STOPPED": CaseStatus.BLOCKED,
    "NOT_EXECUTED": CaseStatus.UNTESTED,
    "QUEUED": CaseStatus.UNTESTED,
}


def template_fields(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def _check_template(value: str) -> str:
    unknown = template_fields(value) - TEMPLATE_FIELDS
    if unknown:
        raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; allowed: {', '.join(sorted(TEMPLATE_FIELDS))}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """Every list is a set of alternatives (glob patterns); an empty or missing list matches anything."""

    providers: list[str] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)
    repositories: list[str] = Field(default_factory=list)
    branches: list[str] = Field(default_factory=list)
    workflows: list[str] = Field(default_factory=list)
    outcomes: list[str] = Field(default_factory=lambda: ["success"])


class TestsigmaPlan(_Strict):
    test_plan_id: int = Field(gt=0)
    environment_id: int | None = Field(default=None, gt=0)
    build_number: str = "{repository}@{short_sha}"
    runtime_data: dict[str, str] = Field(default_factory=dict)

    _template = field_validator("build_number")(_check_template)


class Polling(_Strict):
    first_wait_seconds: int = Field(default=30, ge=0, le=3600)
    backoff_rate: float = Field(default=1.5, ge=1.0, le=10.0)
    max_wait_seconds: int = Field(default=300, ge=0, le=3600)
    deadline_seconds: int = Field(default=7200, gt=0, le=7 * 24 * 3600)

    @model_validator(mode="after")
    def _consistent(self) -> Polling:
        if self.max_wait_seconds < self.first_wait_seconds:
            raise ValueError("max_wait_seconds must be >= first_wait_seconds")
        # Each poll costs ~5 history events; stay far below Step Functions' 25,000-event limit.
        ceiling = max(self.max_wait_seconds, 1)
        if self.deadline_seconds / ceiling > 2000:
            raise ValueError(
                "deadline_seconds / max_wait_seconds allows more than 2000 polls; "
                "raise max_wait_seconds or lower the deadline"
            )
        return self

    def wait_after(self, attempt: int) -> int:
        """Seconds to wait after poll number `attempt` (0-based)."""
        return int(min(self.max_wait_seconds, self.first_wait_seconds * self.backoff_rate**attempt))


class TestsigmaTmTarget(_Strict):
    kind: Literal["testsigma_tm"]
    name: str = "testsigma-tm"
    project_id: str = Field(min_length=1)
    run_title: str = "{pipeline_name} {repository}@{short_sha} (Testsigma run {run_id})"
    status_ids: dict[CaseStatus, str] = Field(
        description="test_run_status_id for each relay status the results may produce"
    )
    result_map: dict[str, CaseStatus] = Field(
        default_factory=dict, description="overrides of the Testsigma result -> status defaults"
    )
    case_map: dict[int, str] = Field(min_length=1, description="Testsigma test case id -> Test Management test case id")
    assignee_id: str | None = None
    user_id: str | None = None
    labels: list[str] = Field(default_factory=list)
    batch_size: int = Field(default=100, ge=1, le=500)

    _template = field_validator("run_title")(_check_template)

    @field_validator("result_map", mode="before")
    @classmethod
    def _upper_results(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(k).upper(): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _every_status_mapped(self) -> TestsigmaTmTarget:
        produced = set({**DEFAULT_RESULT_MAP, **self.result_map}.values())
        missing = sorted(s.value for s in produced - set(self.status_ids))
        if missing:
            raise ValueError(f"status_ids has no test_run_status_id for: {', '.join(missing)}")
        return self

    def status_for(self, result: str) -> CaseStatus:
        mapping = {**DEFAULT_RESULT_MAP, **self.result_map}
        return mapping.get(result.upper(), CaseStatus.UNTESTED)


Target = Annotated[TestsigmaTmTarget, Field(discriminator="kind")]


class RouteAction(_Strict):
    """What a matched route does; copied into each job."""

    name: str
    testsigma: TestsigmaPlan
    polling: Polling = Field(default_factory=Polling)
    targets: list[Target] = Field(default_factory=list)
    report_to_ci: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not ROUTE_NAME.match(value):
            raise ValueError("must be 1-40 characters of a-z, 0-9, '-' or '_', starting with a letter or digit")
        return value

    @model_validator(mode="after")
    def _unique_target_names(self) -> RouteAction:
        names = [t.name for t in self.targets]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"target names must be unique, repeated: {', '.join(duplicates)}")
        return self


class Route(RouteAction):
    match: Match = Field(default_factory=Match)

    def action(self) -> RouteAction:
        return RouteAction.model_validate(self.model_dump(exclude={"match"}))


class RoutesConfig(_Strict):
    version: Literal[1] = 1
    routes: list[Route] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> RoutesConfig:
        names = [r.name for r in self.routes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"route names must be unique, repeated: {', '.join(duplicates)}")
        return self
