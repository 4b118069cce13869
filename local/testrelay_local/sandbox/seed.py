"""The data a sandbox starts from: accepted credentials, Testsigma test plans, Testsigma TM projects."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEMO_TESTSIGMA_API_KEY = "sandbox-testsigma-key"
DEMO_TM_API_KEY = "sandbox-tm-key"
DEMO_GITHUB_TOKEN = "sandbox-github-token"  # noqa: S105 (a public sandbox credential)
DEMO_BROWSERSTACK_USERNAME = "sandbox-browserstack-user"
DEMO_BROWSERSTACK_ACCESS_KEY = "sandbox-browserstack-key"
DEMO_GITHUB_APP_ID = "424242"
DEMO_GITHUB_INSTALLATION_ID = 77
DEMO_GITLAB_TOKEN = "sandbox-gitlab-token"  # noqa: S105 (a public sandbox credential)
DEMO_BITBUCKET_USERNAME = "sandbox-bitbucket-user"
DEMO_BITBUCKET_APP_PASSWORD = "sandbox-bitbucket-app-password"  # noqa: S105 (a public sandbox credential)

# Testsigma's documentation spells results both ways (SUCCESS/FAILURE and PASSED/FAILED); seeds may use
# either so clients can be tested against both.
CaseResult = Literal["SUCCESS", "PASSED", "FAILURE", "FAILED", "ABORTED", "NOT_EXECUTED", "STOPPED"]
PASSED_RESULTS = frozenset({"SUCCESS", "PASSED"})


def _demo_app_key() -> str:
    from testrelay_local.sandbox.github_app import demo_app_key  # cryptography loads only when used

    return demo_app_key()


class _SeedModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IterationSeed(_SeedModel):
    iteration: str
    result: CaseResult


class PlanCaseSeed(_SeedModel):
    """One test case of a Testsigma test plan; field names are Testsigma's own."""

    testCaseId: int
    testCaseName: str
    testSuiteId: int
    testSuiteName: str
    result: CaseResult = Field(description="the result the case ends with when a run of its plan completes")
    isDataDrivenCase: bool = False
    iterations: list[IterationSeed] = Field(default_factory=list)


class PlanSeed(_SeedModel):
    name: str
    description: str | None = None
    cases: list[PlanCaseSeed] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_case_ids(self) -> PlanSeed:
        ids = [case.testCaseId for case in self.cases]
        if len(ids) != len(set(ids)):
            raise ValueError(f"test plan {self.name!r} lists a testCaseId more than once")
        return self


class EnvironmentSeed(_SeedModel):
    name: str


class TmCaseSeed(_SeedModel):
    id: str
    human_id: str
    title: str
    labels: list[str] = Field(default_factory=list)


class TmProjectSeed(_SeedModel):
    name: str
    cases: list[TmCaseSeed] = Field(default_factory=list)


class TmStatusSeed(_SeedModel):
    id: str
    name: str


class TmUserSeed(_SeedModel):
    id: str
    email: str
    status: str = "active"


class BsCaseSeed(_SeedModel):
    """A BrowserStack Test Management test case; field names are BrowserStack's own."""

    identifier: str
    title: str
    tags: list[str] = Field(default_factory=list)
    custom_fields: dict[str, str] = Field(
        default_factory=dict, description="served as a list of {field_name, value} or a dict (behaviour knob)"
    )


class BsProjectSeed(_SeedModel):
    name: str
    cases: list[BsCaseSeed] = Field(default_factory=list)
    configurations: list[int] = Field(default_factory=list)


BulkResults = Literal["absent", "other_body", "present"]
TmPaging = Literal["cursor", "page_token", "after", "page_number", "next_url", "unknown_param"]
TmLabels = Literal["objects", "strings"]
BsCustomFields = Literal["list", "dict"]
OverrideSpellings = Literal["enum", "both"]
RunListing = Literal["absent", "filtered", "unfiltered"]
AnnotationRepeat = Literal["upsert", "conflict"]


class VendorBehaviour(_SeedModel):
    """Where the vendors' documents are silent, which plausible behaviour the sandbox shows.

    The defaults are what the documents (and the vendors' own public clients) say or show; every
    other value is a variant the relay must cope with. Set with the seed or `POST /_sandbox/config`."""

    bs_bulk_results: BulkResults = Field(
        default="absent",
        description="POST .../results/bulk: absent (404, as no document gives it), other_body (exists but "
        'wants {"results": [...]}: 400 to anything else), present ({"test_results": [...]}, all or nothing)',
    )
    bs_max_cases_per_request: int = Field(
        default=1000, ge=1, description="update-test-cases refuses more with max_test_cases_per_request_exceeded"
    )
    bs_custom_fields: BsCustomFields = Field(
        default="list", description="a test case's custom_fields: list of {field_name, value} (documented) or dict"
    )
    tm_paging: TmPaging = Field(
        default="cursor",
        description="how Testsigma TM lists page: the query parameter carrying page_info.next (cursor, "
        "page_token, after: an opaque token; page_number: ?page=N with next an integer; next_url: next is the "
        "whole URL of the following page), or unknown_param: a parameter no client knows, so it repeats page 1",
    )
    tm_labels: TmLabels = Field(default="objects", description="a TM test case's labels: {id, name} objects or strings")
    ts_override_spellings: OverrideSpellings = Field(
        default="enum",
        description="override results accepted: enum (SUCCESS, FAILURE, ABORTED, NOT_EXECUTED, QUEUED, STOPPED) "
        "or both (PASSED/FAILED accepted as SUCCESS/FAILURE too)",
    )
    ts_run_listing: RunListing = Field(
        default="absent",
        description="GET /execution_results (a plan's runs), which the trigger document does not give: absent "
        "(405, as documented: no listing), filtered (honours ?executionId= and ?buildNo=), unfiltered (ignores "
        "the query: every run of the account); both listings answer a Spring page, newest first, ?page=&size=",
    )
    bb_annotation_repeat: AnnotationRepeat = Field(
        default="upsert",
        description="a Bitbucket bulk annotation upload naming an external_id the report already holds "
        "(not documented): upsert (replaced) or conflict (409 for the request)",
    )


class SandboxSeed(_SeedModel):
    """Everything the sandbox serves before any call; loadable from JSON (`model_validate_json`)."""

    testsigma_api_key: str = DEMO_TESTSIGMA_API_KEY
    testsigma_tm_api_key: str = DEMO_TM_API_KEY
    github_token: str = DEMO_GITHUB_TOKEN
    github_app_id: str = DEMO_GITHUB_APP_ID
    github_app_private_key: str = Field(default_factory=_demo_app_key, repr=False)
    github_app_installation_id: int = Field(default=DEMO_GITHUB_INSTALLATION_ID, gt=0)
    github_app_token_lifetime_s: float = Field(default=3600, gt=0, description="an installation token's life")
    github_app_repositories: list[str] = Field(
        default_factory=list, description="the repositories the App is installed on (owner/name); empty: every one"
    )
    browserstack_username: str = DEMO_BROWSERSTACK_USERNAME
    browserstack_access_key: str = DEMO_BROWSERSTACK_ACCESS_KEY
    bs_projects: dict[str, BsProjectSeed] = Field(default_factory=dict)
    bs_custom_statuses: list[str] = Field(default_factory=list, description="result statuses beyond the system ones")
    bs_async_delay_s: float = Field(default=0.2, ge=0, description="how long update-test-cases takes to apply")
    gitlab_token: str = DEMO_GITLAB_TOKEN
    bitbucket_username: str = DEMO_BITBUCKET_USERNAME
    bitbucket_app_password: str = DEMO_BITBUCKET_APP_PASSWORD
    test_plans: dict[int, PlanSeed] = Field(default_factory=dict)
    environments: dict[int, EnvironmentSeed] = Field(
        default_factory=dict, description="when empty, any environmentId is accepted"
    )
    tm_projects: dict[str, TmProjectSeed] = Field(default_factory=dict)
    tm_run_statuses: list[TmStatusSeed] = Field(default_factory=list)
    tm_users: list[TmUserSeed] = Field(default_factory=list)
    behaviour: VendorBehaviour = Field(default_factory=VendorBehaviour)

    @model_validator(mode="after")
    def _unique_tm_ids(self) -> SandboxSeed:
        case_ids = [case.id for project in self.tm_projects.values() for case in project.cases]
        if len(case_ids) != len(set(case_ids)):
            raise ValueError("a Testsigma TM test case id appears more than once")
        status_ids = [status.id for status in self.tm_run_statuses]
        if len(status_ids) != len(set(status_ids)):
            raise ValueError("a Testsigma TM run status id appears more than once")
        return self

    @classmethod
    def demo(cls) -> SandboxSeed:
        """The demo data set: see `testrelay_local.sandbox.demo` for its ids."""
        from testrelay_local.sandbox.demo import demo_seed  # demo builds on this module

        return demo_seed()
