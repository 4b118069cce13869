"""The ledger and vendor clients a step needs, built from settings and secrets when first used."""

from __future__ import annotations

import base64
from functools import lru_cache

from testrelay.aws.ledger import Ledger
from testrelay.aws.secrets import vendor_secret
from testrelay.settings import get_settings
from testrelay.sync.rate_limit import shared_limiter
from testrelay.vendors.bitbucket import BitbucketClient
from testrelay.vendors.browserstack_tm import PACED_PER_MINUTE, THROTTLE_WAIT_SECONDS, BrowserStackTmClient
from testrelay.vendors.github import GitHubClient
from testrelay.vendors.gitlab import GitLabClient
from testrelay.vendors.http import RetryPolicy, VendorSession
from testrelay.vendors.testsigma import TestsigmaClient
from testrelay.vendors.testsigma_tm import TestsigmaTmClient, is_tm_throttle


def ledger() -> Ledger:
    return _ledger(get_settings().require("ledger_table"))


@lru_cache(maxsize=4)
def _ledger(table: str) -> Ledger:
    return Ledger(table)


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
def _browserstack_tm(base_url: str, username: str, access_key: str, timeout: float, limit: int) -> BrowserStackTmClient:
    token = base64.b64encode(f"{username}:{access_key}".encode()).decode()
    session = VendorSession(
        "browserstack-tm",
        base_url,
        {"Authorization": f"Basic {token}"},
        timeout=timeout,
        # BrowserStack asks for a 60 s pause after a 429: waited in the call, paced by the shared limiter.
        retry=RetryPolicy(attempts=6, max_in_call_wait=2 * THROTTLE_WAIT_SECONDS + 5),
        limiter=shared_limiter("browserstack-tm", username, limit),
        throttle_wait=THROTTLE_WAIT_SECONDS,
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


def browserstack_tm(share: int = 1) -> BrowserStackTmClient:
    """`share`: how many write-backs of the same account run side by side (a route's BrowserStack
    targets run in parallel Map iterations); each gets that fraction of the 300 requests/minute
    (paced at 294: see PACED_PER_MINUTE)."""
    settings = get_settings()
    limit = max(1, PACED_PER_MINUTE // max(1, share))
    return _browserstack_tm(
        settings.browserstack_tm_base_url,
        vendor_secret("browserstack_username"),
        vendor_secret("browserstack_access_key"),
        settings.http_timeout_seconds,
        limit,
    )


def github() -> GitHubClient:
    settings = get_settings()
    return _github(settings.github_api_url, vendor_secret("github_token"), settings.http_timeout_seconds)


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
