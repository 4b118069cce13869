"""The ledger and vendor clients a step needs, built from settings and secrets when first used."""

from __future__ import annotations

from functools import lru_cache

from testrelay.aws.ledger import Ledger
from testrelay.aws.secrets import vendor_secret
from testrelay.settings import get_settings
from testrelay.vendors.github import GitHubClient
from testrelay.vendors.http import VendorSession
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


def testsigma() -> TestsigmaClient:
    settings = get_settings()
    key = vendor_secret("testsigma_api_key")
    return _testsigma(settings.testsigma_base_url, key, settings.http_timeout_seconds)


def testsigma_tm() -> TestsigmaTmClient:
    settings = get_settings()
    key = vendor_secret("testsigma_tm_api_key")
    return _testsigma_tm(settings.testsigma_tm_base_url, key, settings.http_timeout_seconds)


def github() -> GitHubClient:
    settings = get_settings()
    return _github(settings.github_api_url, vendor_secret("github_token"), settings.http_timeout_seconds)


def testsigma_run_url(run_id: int) -> str:
    return f"{get_settings().testsigma_app_url.rstrip('/')}/ui/td/runs/{run_id}"
