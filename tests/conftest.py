"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testrelay.settings import get_settings
from testrelay_local.runtime import DEFAULT_ROUTES, LocalRuntime


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    # Settings are cached per process like in Lambda; each test starts from its own environment.
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def local_runtime(request: pytest.FixtureRequest) -> Iterator[LocalRuntime]:
    """The whole local stack (moto server from template.yaml + sandbox), one per test module.

    A module may set SANDBOX_RUN_DURATION (seconds a Testsigma run takes) and ROUTES_FILE (a routes
    file of its own). Waits and retry intervals of the state machine run at time scale 0, so a job
    takes about as long as its Testsigma run.
    """
    duration = getattr(request.module, "SANDBOX_RUN_DURATION", 0.3)
    routes = getattr(request.module, "ROUTES_FILE", DEFAULT_ROUTES)
    with LocalRuntime(routes_file=routes, time_scale=0.0, sandbox_run_duration=duration, port=0) as runtime:
        yield runtime


@pytest.fixture
def runtime(local_runtime: LocalRuntime) -> LocalRuntime:
    """The module's runtime with the sandbox back at its demo data and no faults."""
    assert local_runtime.sandbox is not None
    local_runtime.sandbox.reset()
    return local_runtime
