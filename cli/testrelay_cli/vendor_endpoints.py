"""Where the real vendors answer and which keys reach them, as an operator's environment gives them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Self

# Settings variable of each vendor endpoint -> the public host, used for real vendors unless overridden.
VENDOR_URLS = {
    "TESTSIGMA_BASE_URL": "https://app.testsigma.com/api/v1",
    "TESTSIGMA_APP_URL": "https://app.testsigma.com",
    "TESTSIGMA_TM_BASE_URL": "https://test-management.testsigma.com/api/v1",
    "BROWSERSTACK_TM_BASE_URL": "https://test-management.browserstack.com",
    "GITHUB_API_URL": "https://api.github.com",
    "GITLAB_API_URL": "https://gitlab.com/api/v4",
    "BITBUCKET_API_URL": "https://api.bitbucket.org/2.0",
}
# Key in the VendorCredentials secret -> environment variable that gives it for real vendors.
VENDOR_KEYS = {
    "testsigma_api_key": "TESTSIGMA_API_KEY",
    "testsigma_tm_api_key": "TESTSIGMA_TM_API_KEY",
    "browserstack_username": "BROWSERSTACK_USERNAME",
    "browserstack_access_key": "BROWSERSTACK_ACCESS_KEY",
    "github_token": "GITHUB_TOKEN",
    "gitlab_token": "GITLAB_TOKEN",
    "bitbucket_username": "BITBUCKET_USERNAME",
    "bitbucket_app_password": "BITBUCKET_APP_PASSWORD",
}


@dataclass(frozen=True)
class Vendors:
    urls: dict[str, str]
    credentials: dict[str, str] = field(repr=False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Self:
        """The real vendors: public hosts unless overridden, and the keys of the vendors the routes use."""
        urls = {name: environ.get(name) or default for name, default in VENDOR_URLS.items()}
        credentials = {key: environ[variable] for key, variable in VENDOR_KEYS.items() if environ.get(variable)}
        if "testsigma_api_key" not in credentials:
            raise ValueError("real vendors need at least TESTSIGMA_API_KEY (and the keys of your routes' targets)")
        return cls(urls, credentials)
