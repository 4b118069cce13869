"""What doctor checks, each with read-only calls only, and what it says when a check cannot be made.

Rows: (check, target, result, detail). `result` is `ok`, `FAIL` (the relay would fail or lose results),
`warn` (works, but look at it) or `unchecked` (no read-only call can tell; the detail says when the
relay finds out). Any FAIL makes the command exit non-zero.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from testrelay.errors import VendorAuthFailed, VendorError, VendorPagingStalled, VendorRejected
from testrelay.models.execution import CaseResult
from testrelay.models.routes import (
    BrowserStackTmTarget,
    Route,
    RoutesConfig,
    TestsigmaOverrideTarget,
    TestsigmaTmTarget,
)
from testrelay.models.vendor_enums import BROWSERSTACK_SYSTEM_STATUSES
from testrelay.relay.writers.browserstack_tm import target_case as browserstack_case
from testrelay.relay.writers.testsigma_tm import target_case as testsigma_tm_case
from testrelay.sync.matching import CaseCatalog, CaseMatcher, TargetCase
from testrelay.sync.rate_limit import RateLimiter, shared_limiter
from testrelay.sync.status_map import relay_status
from testrelay.vendors.browserstack_tm import PACED_PER_MINUTE, BrowserStackTmClient
from testrelay.vendors.testsigma_tm import NEXT_IS_URL, TestsigmaTmClient
from testrelay_cli.doctor.readonly import ReadOnlySession, WriteRefused, basic_session, bearer_session

Result = Literal["ok", "FAIL", "warn", "unchecked"]

# BrowserStack's own client probes these in this order and keeps the first answering 2xx.
BROWSERSTACK_REGION_HOSTS: tuple[str, ...] = (
    "https://test-management.browserstack.com",
    "https://test-management-eu.browserstack.com",
    "https://test-management-in.browserstack.com",
)
TM_REQUESTS_PER_SECOND = 10
"""Testsigma TM's reported budget (x-tms-api-limit); over it, it answers HTTP 500 "rate limit exceeded"."""
LISTED = 10
"""How many unmatched or unknown names a detail lists."""


@dataclass(frozen=True)
class Check:
    check: str
    target: str
    result: Result
    detail: str

    def as_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class DoctorSettings:
    """Where the vendors are and which keys to use (the same names as the relay's settings and secret)."""

    urls: Mapping[str, str]
    credentials: Mapping[str, str] = field(repr=False)
    browserstack_hosts: Sequence[str] = BROWSERSTACK_REGION_HOSTS
    sample_runs: Mapping[str, int] = field(default_factory=dict)
    """route name -> an earlier Testsigma run of its plan: proves the plan and lists its cases."""
    timeout: float = 10.0
    pace: bool = True
    """Pace calls to the documented limits (Testsigma TM ~10/s, BrowserStack 300/min), as the relay does."""


def _brief(error: Exception) -> str:
    return str(error).split(": ", 1)[-1] if isinstance(error, VendorError) else f"{type(error).__name__}: {error}"


def _unreachable(error: VendorError, variable: str, url: str) -> str:
    return f"no usable answer from {url} ({_brief(error)}): check {variable} and the network"


def _listed(names: Sequence[str]) -> str:
    more = f" and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return ", ".join(names[:LISTED]) + more


class _Doctor:
    def __init__(self, config: RoutesConfig, settings: DoctorSettings) -> None:
        self.config = config
        self.settings = settings
        self.checks: list[Check] = []
        self.testsigma: ReadOnlySession | None = None
        self.tm: TestsigmaTmClient | None = None
        self.tm_statuses: dict[str, str] | None = None
        self.bs: BrowserStackTmClient | None = None

    def add(self, check: str, target: str, result: Result, detail: str) -> None:
        self.checks.append(Check(check, target, result, detail))

    def key(self, name: str) -> str | None:
        return self.settings.credentials.get(name) or None

    # --- credentials (and the BrowserStack region), once per vendor the routes use ------------------

    def credentials(self) -> None:
        targets = [target for route in self.config.routes for target in route.targets]
        if self.config.routes:
            self._testsigma_credentials()
        if any(isinstance(t, TestsigmaTmTarget) for t in targets):
            self._tm_credentials()
        if any(isinstance(t, BrowserStackTmTarget) for t in targets):
            self._browserstack_credentials()

    def _testsigma_credentials(self) -> None:
        url = self.settings.urls["TESTSIGMA_BASE_URL"]
        key = self.key("testsigma_api_key")
        if key is None:
            self.add("credentials", "testsigma", "FAIL", "no key: set TESTSIGMA_API_KEY")
            return
        session = bearer_session("testsigma", url, key, self.settings.timeout)
        try:
            configs = session.request("GET", "/saved_execution_configs")
            detail = f"key accepted ({len(configs) if isinstance(configs, list) else 0} saved run configs)"
        except VendorAuthFailed as exc:
            self.add("credentials", "testsigma", "FAIL", f"key refused (HTTP {exc.status}): check TESTSIGMA_API_KEY")
            return
        except VendorRejected as exc:
            # Authentication comes before routing: any answer but 401/403 means the key was accepted.
            detail = f"key accepted (GET /saved_execution_configs answered HTTP {exc.status}, not 401)"
        except VendorError as exc:
            self.add("credentials", "testsigma", "FAIL", _unreachable(exc, "TESTSIGMA_BASE_URL", url))
            return
        self.testsigma = session
        self.add("credentials", "testsigma", "ok", detail)

    def _tm_credentials(self) -> None:
        url = self.settings.urls["TESTSIGMA_TM_BASE_URL"]
        key = self.key("testsigma_tm_api_key")
        if key is None:
            self.add("credentials", "testsigma-tm", "FAIL", "no key: set TESTSIGMA_TM_API_KEY")
            return
        limiter = RateLimiter(TM_REQUESTS_PER_SECOND, 1.0) if self.settings.pace else None
        client = TestsigmaTmClient(bearer_session("testsigma-tm", url, key, self.settings.timeout, limiter))
        try:
            statuses = client.list_run_statuses()
        except VendorAuthFailed as exc:
            self.add(
                "credentials", "testsigma-tm", "FAIL", f"key refused (HTTP {exc.status}): check TESTSIGMA_TM_API_KEY"
            )
            return
        except VendorError as exc:
            self.add("credentials", "testsigma-tm", "FAIL", _unreachable(exc, "TESTSIGMA_TM_BASE_URL", url))
            return
        self.tm = client
        self.tm_statuses = {str(s.get("id")): str(s.get("name") or "") for s in statuses}
        self.add("credentials", "testsigma-tm", "ok", f"key accepted ({len(statuses)} run statuses)")

    def _browserstack_credentials(self) -> None:
        username, secret = self.key("browserstack_username"), self.key("browserstack_access_key")
        if username is None or secret is None:
            self.add("credentials", "browserstack", "FAIL", "set BROWSERSTACK_USERNAME and BROWSERSTACK_ACCESS_KEY")
            return
        configured = self.settings.urls["BROWSERSTACK_TM_BASE_URL"].rstrip("/")
        hosts = [host.rstrip("/") for host in self.settings.browserstack_hosts]
        # A URL that is none of the regional hosts (a proxy, the sandbox) is the only one probed.
        candidates = hosts if configured in hosts else [configured]
        failures: list[str] = []
        refused = 0
        limiter = shared_limiter("browserstack-tm", username, PACED_PER_MINUTE) if self.settings.pace else None
        for host in candidates:
            session = basic_session("browserstack-tm", host, username, secret, self.settings.timeout, limiter)
            try:
                session.request("GET", "/api/v2/projects/")
            except VendorError as exc:
                refused += isinstance(exc, VendorAuthFailed)
                failures.append(f"{host}: {_brief(exc)}")
                continue
            if host != configured:
                self.add(
                    "region",
                    "browserstack",
                    "FAIL",
                    f"the account answers on {host}, but the relay is configured for {configured}: set "
                    f"BROWSERSTACK_TM_BASE_URL (template parameter BrowserstackTmBaseUrl) to {host}",
                )
                return
            self.bs = BrowserStackTmClient(session)
            self.add("credentials", "browserstack", "ok", "username and access key accepted")
            where = f"{host} (probed {', '.join(candidates[: candidates.index(host) + 1])})"
            self.add("region", "browserstack", "ok", where if len(candidates) > 1 else host)
            return
        if refused == len(candidates):
            why = "credentials refused by every region: check BROWSERSTACK_USERNAME and BROWSERSTACK_ACCESS_KEY"
        else:
            why = "no region answered 2xx to GET /api/v2/projects/"
        self.add("credentials", "browserstack", "FAIL", f"{why} ({'; '.join(failures)})")

    # --- each route -----------------------------------------------------------------------------

    def route(self, route: Route) -> None:
        results = self._plan(route)
        for target in route.targets:
            where = f"{route.name}/{target.name}"
            if isinstance(target, TestsigmaTmTarget):
                self._tm_target(where, target, results)
            elif isinstance(target, BrowserStackTmTarget):
                self._bs_target(where, target, results)
            else:
                self._override_target(where, target, results)

    def _plan(self, route: Route) -> list[CaseResult] | None:
        """The plan (and environment) checks; the plan's cases when an earlier run of it was given."""
        plan_id, environment_id = route.testsigma.test_plan_id, route.testsigma.environment_id
        run_id = self.settings.sample_runs.get(route.name)
        how = f"give --sample-run {route.name}=<id of an earlier run of plan {plan_id}> to check it"
        if run_id is None or self.testsigma is None:
            reason = "no documented read-only call shows a test plan" if run_id is None else "Testsigma unreachable"
            self.add("plan", route.name, "unchecked", f"plan {plan_id}: {reason}; the first trigger tells ({how})")
            if environment_id is not None:
                self.add("environment", route.name, "unchecked", f"environment {environment_id}: checked with the plan")
            return None
        try:
            run = self.testsigma.request("GET", f"/execution_results/{run_id}") or {}
            cases = self.testsigma.request("GET", f"/execution_results/{run_id}/test_case_results") or {}
        except VendorRejected as exc:
            self.add("plan", route.name, "FAIL", f"sample run {run_id}: {_brief(exc)}")
            return None
        except VendorError as exc:
            self.add("plan", route.name, "FAIL", f"sample run {run_id} could not be read: {_brief(exc)}")
            return None
        ran = run.get("executionId") or (run.get("execution") or {}).get("id")
        if str(ran) != str(plan_id):
            self.add("plan", route.name, "FAIL", f"sample run {run_id} is a run of plan {ran}, not of plan {plan_id}")
            return None
        self.add("plan", route.name, "ok", f"plan {plan_id} exists (sample run {run_id})")
        if environment_id is not None:
            used = run.get("environmentId")
            if str(used) == str(environment_id):
                self.add("environment", route.name, "ok", f"environment {environment_id} (used by run {run_id})")
            else:
                self.add(
                    "environment",
                    route.name,
                    "unchecked",
                    f"sample run {run_id} ran in environment {used}, so environment {environment_id} is not proven",
                )
        return [_case_result(case) for case in cases.get("testCases") or []]

    # --- Testsigma Test Management ----------------------------------------------------------------

    def _tm_target(self, where: str, target: TestsigmaTmTarget, results: list[CaseResult] | None) -> None:
        if self.tm is None:
            self.add("project", where, "unchecked", "Testsigma TM credentials failed")
            return
        try:
            cases = self.tm.list_cases(target.project_id)
        except VendorPagingStalled as exc:
            self.add("project", where, "FAIL", _brief(exc))
            return
        except VendorError as exc:
            self.add("project", where, "FAIL", _project_failure(target.project_id, exc))
            return
        self.add("project", where, "ok", f"project {target.project_id}: {len(cases)} test cases")
        self._tm_statuses(where, target)
        self._tm_users(where, target)
        catalog = [testsigma_tm_case(case) for case in cases]
        self._matching(where, target, catalog, results)
        self._tm_capabilities(where, target, cases)

    def _tm_statuses(self, where: str, target: TestsigmaTmTarget) -> None:
        known = self.tm_statuses or {}
        unknown = [
            f"{status.value} -> {status_id}"
            for status, status_id in target.status_ids.items()
            if status_id not in known
        ]
        if unknown:
            available = ", ".join(f"{name} ({status_id})" for status_id, name in known.items())
            self.add(
                "status ids",
                where,
                "FAIL",
                f"not run statuses of this account: {', '.join(unknown)}; available: {available}",
            )
        else:
            named = ", ".join(f"{status.value}={known[status_id]}" for status, status_id in target.status_ids.items())
            self.add("status ids", where, "ok", named)

    def _tm_users(self, where: str, target: TestsigmaTmTarget) -> None:
        wanted = {"assignee_id": target.assignee_id, "user_id": target.user_id}
        named = {key: value for key, value in wanted.items() if value}
        if not named:
            return
        assert self.tm is not None
        try:
            # The client lists users with the same paging (and cursor detection) as every list.
            users = {str(user.get("id")): user for user in self.tm._pages("/users", "users")}
        except VendorError as exc:
            self.add("users", where, "FAIL", f"GET /users: {_brief(exc)}")
            return
        unknown = [f"{key} {value}" for key, value in named.items() if value not in users]
        if unknown:
            self.add("users", where, "FAIL", f"not users of this account: {', '.join(unknown)}")
            return
        found = ", ".join(f"{key}={users[str(value)].get('email') or value}" for key, value in named.items())
        self.add("users", where, "ok", found)

    def _tm_capabilities(self, where: str, target: TestsigmaTmTarget, cases: list[dict[str, Any]]) -> None:
        assert self.tm is not None
        try:
            parameter = self.tm.probe_paging(target.project_id)
        except VendorPagingStalled as exc:
            self.add("capability: paging", where, "FAIL", _brief(exc))
        except VendorError as exc:
            self.add("capability: paging", where, "FAIL", f"could not turn a page: {_brief(exc)}")
        else:
            if parameter is None:
                self.add("capability: paging", where, "unchecked", "one case or none: no page to turn yet")
            elif parameter == NEXT_IS_URL:
                self.add("capability: paging", where, "ok", "page_info.next is the next page's URL")
            else:
                self.add("capability: paging", where, "ok", f"cursor parameter: {parameter}")
        self.add("capability: labels", where, "ok", _shape([case.get("labels") for case in cases], "labels"))

    # --- BrowserStack Test Management -------------------------------------------------------------

    def _bs_target(self, where: str, target: BrowserStackTmTarget, results: list[CaseResult] | None) -> None:
        if self.bs is None:
            self.add("project", where, "unchecked", "BrowserStack credentials or region failed")
            return
        try:
            cases = list(self.bs.list_cases(target.project_id))
        except VendorError as exc:
            self.add("project", where, "FAIL", _project_failure(target.project_id, exc))
            return
        self.add("project", where, "ok", f"project {target.project_id}: {len(cases)} test cases")
        custom = sorted({name for name in target.statuses.values() if name not in BROWSERSTACK_SYSTEM_STATUSES})
        if custom:
            self.add(
                "statuses",
                where,
                "unchecked",
                f"custom statuses {', '.join(custom)}: no documented read-only list of an account's statuses; "
                "an unknown one is refused at the first result written",
            )
        else:
            self.add("statuses", where, "ok", "system statuses only (documented)")
        self._matching(where, target, [browserstack_case(case) for case in cases], results)
        bulk = "bulk_results: false (one result per call)" if not target.bulk_results else None
        self.add(
            "capability: results",
            where,
            "ok" if bulk else "unchecked",
            bulk
            or "bulk or single results: detected at first write (the multi-result call is undocumented, "
            "and only a write can tell)",
        )
        self.add(
            "capability: cases per call",
            where,
            "unchecked",
            f"up to {target.cases_per_call} per update-test-cases call: the cap is undocumented, detected at first "
            "write (max_test_cases_per_request_exceeded)",
        )
        self.add(
            "capability: custom fields", where, "ok", _shape([case.get("custom_fields") for case in cases], "fields")
        )

    # --- Testsigma overrides --------------------------------------------------------------------

    def _override_target(self, where: str, target: TestsigmaOverrideTarget, results: list[CaseResult] | None) -> None:
        rules = ", ".join(f"{result} -> {override}" for result, override in target.overrides.items())
        self.add("override rules", where, "ok", f"{rules} (Testsigma's result enum)")
        if results is None:
            self.add("case matching", where, "unchecked", "how many results would be overridden: needs --sample-run")
            return
        hits = [r for r in results if r.case_result_id and target.override_for(r.case_id, r.result)]
        self.add(
            "case matching", where, "ok", f"{len(hits)} of {len(results)} results of the sample run would be overridden"
        )

    # --- matching dry-run, shared by both test-management targets ---------------------------------

    def _matching(
        self,
        where: str,
        target: TestsigmaTmTarget | BrowserStackTmTarget,
        catalog_cases: list[TargetCase],
        results: list[CaseResult] | None,
    ) -> None:
        ids = {case.id for case in catalog_cases}
        mapped = [
            case_id for value in target.case_map.values() for case_id in ([value] if isinstance(value, str) else value)
        ]
        missing = sorted({case_id for case_id in mapped if case_id not in ids})
        if missing:
            self.add(
                "case_map", where, "FAIL", f"{len(missing)} mapped case id(s) not in the project: {_listed(missing)}"
            )
        elif mapped:
            self.add("case_map", where, "ok", f"every mapped case id exists ({len(mapped)})")
        if results is None:
            self.add(
                "case matching",
                where,
                "unchecked",
                "the plan's cases are listed by no read-only call: give --sample-run ROUTE=RUN_ID for a dry-run",
            )
            return
        matcher = CaseMatcher(target, lambda: CaseCatalog.build(catalog_cases, target.match_by, target.match_field))
        unmatched: list[str] = []
        matched = 0
        for result in _unique(results):
            if any(case_id in ids for case_id in matcher.match(result)):
                matched += 1
            else:
                unmatched.append(result.name)
        total = matched + len(unmatched)
        detail = f"{matched} of {total} plan cases match (by {' then '.join(target.match_by)})"
        if unmatched:
            self.add("case matching", where, "warn", f"{detail}; unmatched: {_listed(unmatched)}")
        else:
            self.add("case matching", where, "ok", detail)


def _case_result(case: Mapping[str, Any]) -> CaseResult:
    result = str(case.get("result") or "NOT_EXECUTED").upper()
    return CaseResult(
        case_id=int(case.get("testCaseId") or 0),
        name=str(case.get("testCaseName") or case.get("testCaseId") or ""),
        result=result,
        status=relay_status(result),
        case_result_id=case.get("testCaseResultId"),
    )


def _unique(results: Iterable[CaseResult]) -> list[CaseResult]:
    """One result per Testsigma case (a case run on several machines is still one case to match)."""
    seen: dict[tuple[int, str], CaseResult] = {}
    for result in results:
        seen.setdefault((result.case_id, result.name), result)
    return list(seen.values())


def _shape(values: Iterable[Any], what: str) -> str:
    """How the vendor shapes a case's labels or custom fields, as seen in the case list (read-only)."""
    seen: set[str] = set()
    for value in values:
        if isinstance(value, dict) and value:
            seen.add("a {name: value} dict")
        elif isinstance(value, list):
            for item in value:
                seen.add(f"a list of {{{', '.join(item)}}} objects" if isinstance(item, dict) else "a list of strings")
    if not seen:
        return f"no case has {what} yet: the shape is read when a case has some (both shapes are understood)"
    return f"{what} come as {' and '.join(sorted(seen))} (understood)"


def _project_failure(project_id: str, error: VendorError) -> str:
    if isinstance(error, VendorRejected) and error.status == 404:
        return f"project {project_id} not found (HTTP 404): check project_id, and that these credentials can see it"
    return f"project {project_id}: {_brief(error)}"


def run_doctor(config: RoutesConfig, settings: DoctorSettings) -> list[Check]:
    """Every check for every route of `config`, read-only."""
    unknown = sorted(set(settings.sample_runs) - {route.name for route in config.routes})
    if unknown:
        raise ValueError(f"--sample-run names route(s) not in the routes file: {', '.join(unknown)}")
    doctor = _Doctor(config, settings)
    _guarded(doctor, "credentials", "vendors", doctor.credentials)
    for route in config.routes:
        _guarded(doctor, "route", route.name, functools.partial(doctor.route, route))
    return doctor.checks


def _guarded(doctor: _Doctor, check: str, target: str, step: Callable[[], None]) -> None:
    """An answer no check expected (a malformed body, a vendor bug) is a FAIL row, not a traceback."""
    try:
        step()
    except WriteRefused:
        raise
    except Exception as exc:  # reported as a row; the run goes on with the other routes
        doctor.add(check, target, "FAIL", f"stopped by an unexpected answer: {_brief(exc)}")
