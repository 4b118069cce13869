"""Fixtures shared by every test layer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testrelay.settings import get_settings


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    # Settings are cached per process like in Lambda; each test starts from its own environment.
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
