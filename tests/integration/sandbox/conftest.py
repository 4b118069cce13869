"""One vendor sandbox for the whole module run, reset to the demo data before each test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from testrelay_local.sandbox import (
    DEMO_GITHUB_TOKEN,
    DEMO_TESTSIGMA_API_KEY,
    DEMO_TM_API_KEY,
    Sandbox,
    SandboxSeed,
)

TIMEOUT_S = 5.0


@dataclass
class Api:
    """A vendor's base URL with its credentials, the way a client configured for it would call."""

    base_url: str
    headers: dict[str, str] = field(default_factory=dict)
    session: requests.Session = field(default_factory=requests.Session)
    auth: tuple[str, str] | None = None

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", TIMEOUT_S)
        kwargs.setdefault("auth", self.auth)
        return self.session.request(method, self.base_url + path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.call("PUT", path, **kwargs)


@pytest.fixture(scope="session")
def _running_sandbox() -> Iterator[Sandbox]:
    sandbox = Sandbox(run_duration=0)
    sandbox.start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def sandbox(_running_sandbox: Sandbox) -> Sandbox:
    _running_sandbox.load_seed(SandboxSeed.demo())
    _running_sandbox.reset()
    return _running_sandbox


@pytest.fixture
def testsigma(sandbox: Sandbox) -> Api:
    return Api(sandbox.testsigma_url, {"Authorization": f"Bearer {DEMO_TESTSIGMA_API_KEY}"})


@pytest.fixture
def tm(sandbox: Sandbox) -> Api:
    return Api(sandbox.testsigma_tm_url, {"Authorization": f"Bearer {DEMO_TM_API_KEY}"})


@pytest.fixture
def github(sandbox: Sandbox) -> Api:
    return Api(sandbox.github_url, {"Authorization": f"token {DEMO_GITHUB_TOKEN}"})


@pytest.fixture
def control(sandbox: Sandbox) -> Api:
    return Api(f"{sandbox.base_url}/_sandbox")
