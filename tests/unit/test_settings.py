"""Settings from the environment: typed, bounded, and every wrong value named in one message."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testrelay.errors import ConfigurationError
from testrelay.settings import get_settings


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_values_take_their_setting_s_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WRITE_BACK_IN_FLIGHT", "8")
    monkeypatch.setenv("HTTP_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("RATE_BUDGET", "process")
    monkeypatch.setenv("JOBS_QUEUE_URL", "https://sqs.example/q")
    settings = get_settings()
    assert (settings.write_back_in_flight, settings.http_timeout_seconds) == (8, 2.5)
    assert (settings.rate_budget, settings.jobs_queue_url) == ("process", "https://sqs.example/q")
    assert settings.secrets_max_age_seconds == 300  # unset: the default


def test_every_wrong_value_is_named_with_its_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WRITE_BACK_IN_FLIGHT", "99")
    monkeypatch.setenv("AWS_READ_TIMEOUT_SECONDS", "0")
    monkeypatch.setenv("AWS_CALL_ATTEMPTS", "three")
    monkeypatch.setenv("RATE_BUDGET", "global")
    monkeypatch.setenv("HTTP_TIMEOUT_SECONDS", "inf")
    with pytest.raises(ConfigurationError) as raised:
        get_settings()
    message = str(raised.value)
    assert "WRITE_BACK_IN_FLIGHT: must be at most 16" in message
    assert "AWS_READ_TIMEOUT_SECONDS: must be greater than 0" in message
    assert "AWS_CALL_ATTEMPTS: must be an integer" in message
    assert "RATE_BUDGET: must be one of 'shared', 'process'" in message
    assert "HTTP_TIMEOUT_SECONDS: must be a number" in message


def test_a_required_setting_names_its_variable() -> None:
    with pytest.raises(ConfigurationError, match="environment variable LEDGER_TABLE is not set"):
        get_settings().require("ledger_table")
