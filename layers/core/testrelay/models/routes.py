"""The routes file: which CI events trigger which Testsigma plan and where results are written.

A route is copied into every job it creates, so editing the routes file never changes a job in flight.
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from testrelay.models.execution import CaseStatus
from testrelay.models.vendor_enums import (
    BROWSERSTACK_SYSTEM_STATUSES,
    TESTSIGMA_OVERRIDE_RESULTS,
    TESTSIGMA_RESULT_SPELLINGS,
    TESTSIGMA_RESULTS,
    canonical_testsigma_result,
)
from testrelay.sync.matching import CaseMatching
from testrelay.sync.status_map import ResultMapping

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

OVERRIDE_COMMENT_FIELDS = frozenset({"route", "run_id", "result", "override"})

ROUTE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def template_fields(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def _check_template(value: str) -> str:
    unknown = template_fields(value) - TEMPLATE_FIELDS
    if unknown:
        raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; allowed: {', '.join(sorted(TEMPLATE_FIELDS))}")
    return value


def _check_name(value: str) -> str:
    if not ROUTE_NAME.match(value):
        raise ValueError("must be 1-40 characters of a-z, 0-9, '-' or '_', starting with a letter or digit")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """Every list is a set of alternatives (glob patterns); an empty or missing list matches anything."""

    providers: list[str] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)
    repositories: list[str] = Field(default_factory=list)
    branches: list[str] = Field(default_factory=list)
    # The pipeline, workflow, build definition or job name; `pipelines` reads better for most CIs.
    workflows: list[str] = Field(default_factory=list, validation_alias=AliasChoices("workflows", "pipelines"))
    outcomes: list[str] = Field(default_factory=lambda: ["success"])
    # Tag builds have no branch; they match `tags` (empty: any tag, like every other list).
    tags: list[str] = Field(default_factory=list)
    # Code from a fork (a pull request's head repository differs) runs only where a route asks for it:
    # a fork's `main` is not the repository's `main`.
    forks: bool = False
    # GitLab child pipelines run for the same commit as their parent, which already started the job.
    child_pipelines: bool = False

    @model_validator(mode="before")
    @classmethod
    def _one_name_for_pipelines(cls, value: object) -> object:
        if isinstance(value, dict) and "workflows" in value and "pipelines" in value:
            raise ValueError("give 'pipelines' or 'workflows' (the same list), not both")
        return value


class TestsigmaPlan(_Strict):
    test_plan_id: int = Field(gt=0)
    environment_id: int | None = Field(default=None, gt=0)
    build_number: str = "{repository}@{short_sha}"
    runtime_data: dict[str, str] = Field(default_factory=dict)

    _template = field_validator("build_number")(_check_template)


class Polling(_Strict):
    # predictive: the first look at (1 + `max_lag_share`) x the shortest duration the plan's recent runs
    # make plausible (relay/polling.py), then looks `max_lag_share` of the elapsed time apart; backoff
    # (also what predictive does for a plan without history): `first_wait_seconds`, times
    # `backoff_rate` each look, to `max_wait_seconds`.
    mode: Literal["predictive", "backoff"] = "predictive"
    max_lag_share: float = Field(default=0.1, ge=0.01, le=1.0)
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


class TestsigmaTmTarget(CaseMatching, ResultMapping):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["testsigma_tm"]
    name: str = "testsigma-tm"
    project_id: str = Field(min_length=1)
    run_title: str = "{pipeline_name} {repository}@{short_sha} (Testsigma run {run_id})"
    status_ids: dict[CaseStatus, str] = Field(
        description="test_run_status_id for each relay status the results may produce (custom statuses too)"
    )
    assignee_id: str | None = None
    user_id: str | None = None
    labels: list[str] = Field(default_factory=list)
    batch_size: int = Field(default=100, ge=1, le=500)

    _template = field_validator("run_title")(_check_template)

    @field_validator("status_ids")
    @classmethod
    def _status_ids_given(cls, value: dict[CaseStatus, str]) -> dict[CaseStatus, str]:
        # No document fixes the ids (each project has its own, custom ones included): `testrelay doctor`
        # checks them against the project's statuses. Here only what can never be an id is refused.
        empty = sorted(status.value for status, status_id in value.items() if not status_id.strip())
        if empty:
            raise ValueError(f"empty test_run_status_id for: {', '.join(empty)}")
        return {status: status_id.strip() for status, status_id in value.items()}

    @model_validator(mode="after")
    def _every_status_mapped(self) -> TestsigmaTmTarget:
        missing = sorted(s.value for s in self.produced_statuses() - set(self.status_ids))
        if missing:
            raise ValueError(f"status_ids has no test_run_status_id for: {', '.join(missing)}")
        return self

    def status_id(self, status: CaseStatus) -> str:
        """A status the Testsigma results never produce (JUnit's skipped) may be left unmapped: not run."""
        return self.status_ids.get(status) or self.status_ids[CaseStatus.UNTESTED]


BROWSERSTACK_STATUSES: dict[CaseStatus, str] = {status: status.value for status in CaseStatus}
RunState = Literal["new_run", "in_progress", "under_review", "rejected", "done"]


class BrowserStackTmTarget(CaseMatching, ResultMapping):
    """A BrowserStack Test Management run per job: created with the matched cases, one result each."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["browserstack_tm"]
    name: str = "browserstack-tm"
    project_id: str = Field(min_length=1, description="e.g. PR-1")
    run_name: str = "{pipeline_name} {repository}@{short_sha} (Testsigma run {run_id})"
    description: str = "Results of Testsigma run {run_id}, written by testrelay for {repository}@{short_sha}."
    tags: list[str] = Field(default_factory=list)
    assignee: str | None = Field(default=None, description="e-mail of the run's assignee")
    configurations: list[int] = Field(default_factory=list)
    test_plan_id: str | None = None
    custom_statuses: list[str] = Field(
        default_factory=list, description="the account's custom result statuses that `statuses` may name"
    )
    statuses: dict[CaseStatus, str] = Field(
        default_factory=dict,
        description="result status sent for each relay status: a system status or one of custom_statuses",
    )
    run_state: RunState | None = Field(default=None, description="move the run to this state once written")
    close_run: bool = False
    batch_size: int = Field(default=300, ge=1, le=300, description="results per bulk call (the API allows 300)")
    cases_per_call: int = Field(default=1000, ge=1, le=5000, description="test cases per create/add call")
    bulk_results: bool = Field(default=True, description="false: always one result per call")

    _templates = field_validator("run_name", "description")(_check_template)

    @field_validator("custom_statuses")
    @classmethod
    def _custom_statuses(cls, value: list[str]) -> list[str]:
        names = [name.strip() for name in value]
        if any(not name for name in names):
            raise ValueError("a custom status name is empty")
        return names

    @field_validator("statuses")
    @classmethod
    def _known_statuses(cls, value: dict[CaseStatus, str], info: ValidationInfo) -> dict[CaseStatus, str]:
        custom = list(info.data.get("custom_statuses") or [])
        checked: dict[CaseStatus, str] = {}
        for status, name in value.items():
            name = name.strip()
            if name.lower() in BROWSERSTACK_SYSTEM_STATUSES:
                name = name.lower()  # the API takes system statuses lower-case
            elif name not in custom:
                declared = ", ".join(custom) if custom else "none declared"
                raise ValueError(
                    f"{status.value}: {name!r} is not a BrowserStack status; allowed: "
                    f"{', '.join(BROWSERSTACK_SYSTEM_STATUSES)}, or a custom status listed in custom_statuses "
                    f"({declared})"
                )
            checked[status] = name
        return checked

    def status_name(self, status: CaseStatus) -> str:
        return self.statuses.get(status) or BROWSERSTACK_STATUSES[status]


class TestsigmaOverrideTarget(_Strict):
    """Overrides results of the job's own Testsigma run (`PUT /execution_results/<run_id>/override`)."""

    kind: Literal["testsigma_override"]
    name: str = "testsigma-override"
    overrides: dict[str, str] = Field(
        min_length=1, description="Testsigma result -> result to set, e.g. ABORTED: FAILURE"
    )
    case_ids: list[int] = Field(default_factory=list, description="only these Testsigma cases; empty = all")
    comment: str = "testrelay route {route}: {result} overridden as {override}"
    batch_size: int = Field(default=100, ge=1, le=500)

    @field_validator("comment")
    @classmethod
    def _comment_fields(cls, value: str) -> str:
        unknown = template_fields(value) - OVERRIDE_COMMENT_FIELDS
        if unknown:
            raise ValueError(
                f"unknown placeholder(s) {sorted(unknown)}; allowed: {', '.join(sorted(OVERRIDE_COMMENT_FIELDS))}"
            )
        return value

    @field_validator("overrides", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(k).strip().upper(): str(v).strip().upper() for k, v in value.items()}
        return value

    @field_validator("overrides")
    @classmethod
    def _testsigma_results(cls, value: dict[str, str]) -> dict[str, str]:
        """Keys are results as read (either spelling); values are sent to the override endpoint, whose
        only documented values are Testsigma's result enum (its example sends SUCCESS)."""
        readable = (*TESTSIGMA_RESULTS, *TESTSIGMA_RESULT_SPELLINGS)
        rules: dict[str, str] = {}
        for result, override in value.items():
            if result not in readable:
                raise ValueError(f"{result}: not a Testsigma result; allowed keys: {', '.join(readable)}")
            override = canonical_testsigma_result(override)
            if override not in TESTSIGMA_OVERRIDE_RESULTS:
                raise ValueError(
                    f"{result}: {override!r} cannot be set; allowed values: {', '.join(TESTSIGMA_OVERRIDE_RESULTS)}"
                    " (PASSED/FAILED are sent as SUCCESS/FAILURE; QUEUED is not a result a finished run can get)"
                )
            key = canonical_testsigma_result(result)
            if key == override:
                raise ValueError(f"{result}: overridden with the same result, {override}: remove the rule")
            if rules.get(key, override) != override:
                raise ValueError(f"{result}: {key} already has the override {rules[key]}")
            rules[key] = override
        return rules

    def override_for(self, case_id: int, result: str) -> str | None:
        if self.case_ids and case_id not in self.case_ids:
            return None
        current = canonical_testsigma_result(result)
        wanted = self.overrides.get(current)
        return wanted if wanted and wanted != current else None


Target = Annotated[TestsigmaTmTarget | BrowserStackTmTarget | TestsigmaOverrideTarget, Field(discriminator="kind")]


MAX_SHARD_LOOKS = 1500


class ShardCollecting(_Strict):
    """How the reports of one sharded CI run (one run key) are gathered into one run per target."""

    reruns: Literal["worst", "last"] = Field(
        default="worst",
        description="a case reported by several attempts: the worst status wins, or the latest attempt's",
    )
    settle_seconds: int = Field(
        default=300, ge=1, le=86_400, description="gather without the missing shards after this long without a new one"
    )
    max_wait_seconds: int = Field(
        default=3600, ge=1, le=86_400, description="gather at the latest this long after the run key's first report"
    )
    check_seconds: int = Field(
        default=15, ge=1, le=3600, description="the wait between two looks at what arrived (a Step Functions Wait)"
    )

    @model_validator(mode="after")
    def _history_bound(self) -> ShardCollecting:
        # Each look adds 9 events to the execution's history (measured), which Step Functions caps at 25,000.
        looks = self.max_wait_seconds / self.check_seconds
        if looks > MAX_SHARD_LOOKS:
            raise ValueError(
                f"max_wait_seconds / check_seconds is {looks:.0f} looks; keep it at most {MAX_SHARD_LOOKS} "
                "(raise check_seconds or lower max_wait_seconds)"
            )
        return self


class JunitReading(_Strict):
    """How a route reads the JUnit reports sent to it (`POST /reports/junit/{route}`); off by default."""

    shards: ShardCollecting = Field(default_factory=ShardCollecting)

    trcli_ids: bool = Field(
        default=False,
        description="read TestRail CLI's case ids: C123 in a test's name, <property name='test_id' value='C123'>",
    )
    trcli_id_format: str = Field(
        default="C{id}", description="the case id token a trcli id becomes for matching, e.g. TC-{id} or {id}"
    )

    @field_validator("trcli_id_format")
    @classmethod
    def _one_id_placeholder(cls, value: str) -> str:
        if template_fields(value) != {"id"}:
            raise ValueError("must hold the placeholder {id} and no other, e.g. C{id}")
        return value


class CiFeedback(_Strict):
    """What the route reports to the CI besides (or instead of) the one-line commit status (README
    "Reporting back to the CI"). Off by default: each needs a permission the status does not."""

    github: Literal["commit_status", "check_run"] = Field(
        default="commit_status",
        description="check_run: a check run with summary and annotations, through the GitHub App "
        "(github_app_id, github_app_private_key); commit_status: the token-only status",
    )
    github_installation_id: int | None = Field(
        default=None, gt=0, description="the App's installation; when absent, looked up per repository"
    )
    pull_request_comment: bool = Field(
        default=False, description="one summary comment per pull request (GitHub) or merge request note (GitLab)"
    )
    bitbucket_report: bool = Field(
        default=False, description="a Code Insights report with annotations per failed case, beside the build status"
    )


class RouteAction(_Strict):
    """What a matched route does; copied into each job."""

    name: str
    testsigma: TestsigmaPlan
    polling: Polling = Field(default_factory=Polling)
    targets: list[Target] = Field(default_factory=list)
    report_to_ci: bool = True
    junit: JunitReading = Field(default_factory=JunitReading)
    ci_feedback: CiFeedback = Field(default_factory=CiFeedback)

    _name = field_validator("name")(_check_name)

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


SCHEDULE_EXPRESSION = re.compile(
    r"^(cron\(\S+ \S+ \S+ \S+ \S+ \S+\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\)|at\(\S+\))$"
)


class Schedule(_Strict):
    """A periodic run of a route's test plan, deployed as an EventBridge Scheduler schedule."""

    name: str
    route: str = Field(description="the route whose test plan, polling and targets the run uses")
    expression: str = Field(description="EventBridge Scheduler expression: cron(...), rate(...) or at(...)")
    timezone: str = "UTC"
    enabled: bool = True
    description: str = ""

    _name = field_validator("name")(_check_name)

    @field_validator("expression")
    @classmethod
    def _expression(cls, value: str) -> str:
        if not SCHEDULE_EXPRESSION.match(value.strip()):
            raise ValueError(
                "must be cron(m h dom mon dow year), rate(N minutes|hours|days) or at(yyyy-mm-ddThh:mm:ss)"
            )
        return value.strip()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Berlin)") from exc
        return value


def _repeated(names: list[str]) -> list[str]:
    return sorted({n for n in names if names.count(n) > 1})


class RoutesConfig(_Strict):
    version: Literal[1] = 1
    routes: list[Route] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> RoutesConfig:
        duplicates = _repeated([r.name for r in self.routes])
        if duplicates:
            raise ValueError(f"route names must be unique, repeated: {', '.join(duplicates)}")
        duplicates = _repeated([s.name for s in self.schedules])
        if duplicates:
            raise ValueError(f"schedule names must be unique, repeated: {', '.join(duplicates)}")
        known = {r.name for r in self.routes}
        unknown = [f"{s.name} -> {s.route}" for s in self.schedules if s.route not in known]
        if unknown:
            raise ValueError(f"schedules name routes that do not exist: {', '.join(unknown)}")
        return self

    def route(self, name: str) -> Route:
        for route in self.routes:
            if route.name == name:
                return route
        raise KeyError(name)

    def schedule(self, name: str) -> Schedule:
        for schedule in self.schedules:
            if schedule.name == name:
                return schedule
        raise KeyError(name)
