"""The ledger and vendor clients a step needs, built from settings and secrets when first used."""

from __future__ import annotations

import base64
from functools import lru_cache
from urllib.parse import urlsplit

from testrelay.aws.ledger import Ledger
from testrelay.aws.rate_budget import SharedBudget, account_hash
from testrelay.aws.secrets import vendor_secret
from testrelay.settings import Settings, get_settings
from testrelay.sync.rate_limit import Pacer, RateSpec, announced_by, shared_limiter
from testrelay.vendors.bitbucket import BitbucketClient
from testrelay.vendors.browserstack_tm import BrowserStackTmClient
from testrelay.vendors.github import GitHubClient
from testrelay.vendors.github_app import GitHubApp
from testrelay.vendors.gitlab import GitLabClient
from testrelay.vendors.http import RetryPolicy, VendorSession
from testrelay.vendors.testsigma import TestsigmaClient
from testrelay.vendors.testsigma_tm import TestsigmaTmClient, is_tm_throttle


def ledger() -> Ledger:
    return _ledger(get_settings().require("ledger_table"))


@lru_cache(maxsize=4)
def _ledger(table: str) -> Ledger:
    return Ledger(table)


def rate_spec(vendor: str, settings: Settings | None = None) -> RateSpec:
    """The documented limit of a paced vendor, from the settings."""
    settings = settings or get_settings()
    if vendor == "browserstack-tm":
        return RateSpec(
            settings.browserstack_tm_rate_limit,
            settings.browserstack_tm_rate_period_seconds,
            settings.browserstack_tm_rate_pace,
        )
    if vendor == "testsigma-tm":
        return RateSpec(
            settings.testsigma_tm_rate_limit, settings.testsigma_tm_rate_period_seconds, settings.testsigma_tm_rate_pace
        )
    raise ValueError(f"no rate limit is configured for {vendor}")


def pacer(vendor: str, base_url: str, user: str = "") -> Pacer:
    """The pacer of one vendor account: its shared budget (one DynamoDB item for every process of every
    execution), or, with RATE_BUDGET=process or no table, a limiter of this process only.

    The account is named by a hash of the vendor's host and the (non-secret) user name: BrowserStack's
    limit is per account (group); Testsigma TM's key is the account, so its budget is per host."""
    settings = get_settings()
    account = account_hash(vendor, urlsplit(base_url).netloc, user)
    return _pacer(vendor, account, rate_spec(vendor, settings), settings)


@lru_cache(maxsize=8)
def _pacer(vendor: str, account: str, spec: RateSpec, settings: Settings) -> Pacer:
    table = settings.rate_budget_table or settings.ledger_table
    if settings.rate_budget == "shared" and table:
        lease, share = settings.rate_budget_lease, settings.rate_budget_fallback_share
        return SharedBudget(table, vendor, account, spec, lease=lease, fallback_share=share)
    return shared_limiter(vendor, account, spec.limit, spec.period, spec.pace)


# Keyed by URL and key so a rotated secret gets a fresh client while warm invocations reuse sessions.
@lru_cache(maxsize=4)
def _testsigma(base_url: str, key: str, timeout: float) -> TestsigmaClient:
    return TestsigmaClient(VendorSession("testsigma", base_url, {"Authorization": f"Bearer {key}"}, timeout=timeout))


@lru_cache(maxsize=4)
def _testsigma_tm(base_url: str, key: str, timeout: float) -> TestsigmaTmClient:
    session = VendorSession(
        "testsigma-tm",
        base_url,
        {"Authorization": f"Bearer {key}"},
        timeout=timeout,
        is_throttle=is_tm_throttle,
        limiter=pacer("testsigma-tm", base_url),
        # Paced by the x-tms-api-* headers when the answers carry them; their reset ends a throttle.
        announced=announced_by("x-tms-api-"),
        throttle_wait=get_settings().testsigma_tm_rate_period_seconds,
    )
    return TestsigmaTmClient(session)


@lru_cache(maxsize=4)
def _github(base_url: str, token: str, timeout: float) -> GitHubClient:
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    return GitHubClient(VendorSession("github", base_url, headers, timeout=timeout))


@lru_cache(maxsize=4)
def _browserstack_tm(base_url: str, username: str, access_key: str, timeout: float) -> BrowserStackTmClient:
    token = base64.b64encode(f"{username}:{access_key}".encode()).decode()
    wait = get_settings().browserstack_tm_throttle_wait_seconds
    session = VendorSession(
        "browserstack-tm",
        base_url,
        {"Authorization": f"Basic {token}"},
        timeout=timeout,
        # BrowserStack asks for a 60 s pause after a 429 (no Retry-After documented): waited in the
        # call, and by every concurrent call of the account through the shared budget.
        retry=RetryPolicy(attempts=6, max_in_call_wait=2 * wait + 5),
        limiter=pacer("browserstack-tm", base_url, username),
        throttle_wait=wait,
    )
    return BrowserStackTmClient(session)


def testsigma() -> TestsigmaClient:
    settings = get_settings()
    key = vendor_secret("testsigma_api_key")
    return _testsigma(settings.testsigma_base_url, key, settings.http_timeout_seconds)


def testsigma_tm() -> TestsigmaTmClient:
    settings = get_settings()
    key = vendor_secret("testsigma_tm_api_key")
    return _testsigma_tm(settings.testsigma_tm_base_url, key, settings.http_timeout_seconds)


def browserstack_tm() -> BrowserStackTmClient:
    """The account's client. Every write-back of the account, in this process or any other, draws on
    one budget (see `pacer`)."""
    settings = get_settings()
    return _browserstack_tm(
        settings.browserstack_tm_base_url,
        vendor_secret("browserstack_username"),
        vendor_secret("browserstack_access_key"),
        settings.http_timeout_seconds,
    )


def github() -> GitHubClient:
    settings = get_settings()
    return _github(settings.github_api_url, vendor_secret("github_token"), settings.http_timeout_seconds)


@lru_cache(maxsize=2)
def _github_app(base_url: str, app_id: str, private_key: str, timeout: float) -> GitHubApp:
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    return GitHubApp(app_id, private_key, VendorSession("github", base_url, headers, timeout=timeout))


def github_app() -> GitHubApp:
    """The App behind check runs: one per process, so its installation tokens are minted once an hour."""
    settings = get_settings()
    return _github_app(
        settings.github_api_url,
        vendor_secret("github_app_id"),
        vendor_secret("github_app_private_key"),
        settings.http_timeout_seconds,
    )


def github_installation(repository: str, installation_id: int | None = None) -> tuple[int, GitHubClient]:
    """A client acting as the App's installation on `repository` (check runs need one), and that
    installation's id (to `forget` its token when GitHub refuses it)."""
    settings = get_settings()
    app = github_app()
    installation = app.installation_for(repository, installation_id)
    return installation, _github(settings.github_api_url, app.token(installation), settings.http_timeout_seconds)


@lru_cache(maxsize=4)
def _gitlab(base_url: str, token: str, timeout: float) -> GitLabClient:
    return GitLabClient(VendorSession("gitlab", base_url, {"PRIVATE-TOKEN": token}, timeout=timeout))


@lru_cache(maxsize=4)
def _bitbucket(base_url: str, username: str, app_password: str, timeout: float) -> BitbucketClient:
    basic = base64.b64encode(f"{username}:{app_password}".encode()).decode()
    return BitbucketClient(VendorSession("bitbucket", base_url, {"Authorization": f"Basic {basic}"}, timeout=timeout))


def gitlab() -> GitLabClient:
    settings = get_settings()
    return _gitlab(settings.gitlab_api_url, vendor_secret("gitlab_token"), settings.http_timeout_seconds)


def bitbucket() -> BitbucketClient:
    settings = get_settings()
    username = vendor_secret("bitbucket_username")
    app_password = vendor_secret("bitbucket_app_password")
    return _bitbucket(settings.bitbucket_api_url, username, app_password, settings.http_timeout_seconds)


def testsigma_run_url(run_id: int) -> str:
    return f"{get_settings().testsigma_app_url.rstrip('/')}/ui/td/runs/{run_id}"
