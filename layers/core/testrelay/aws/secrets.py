"""Secrets (webhook secrets, vendor keys) from Secrets Manager, cached for a few minutes."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from testrelay.aws.clients import client
from testrelay.ci.base import WebhookCredential
from testrelay.errors import ConfigurationError, RelayError
from testrelay.settings import get_settings

# Secrets Manager answers that say "not now", not "not configured": the caller may try again later.
_TRANSIENT_CODES = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "InternalServiceError", "ServiceUnavailable", "RequestTimeout"}
)

# Per process, for SECRETS_MAX_AGE_SECONDS: what spares Secrets Manager a call per invocation. (Read
# with the boto3 client directly: Powertools' parameters utility adds ~30 ms to the webhook's cold start.)
_cached: dict[str, tuple[float, dict[str, Any]]] = {}
_lock = threading.Lock()


class SecretsUnavailable(RelayError):
    """Secrets Manager could not be reached or throttled the read: retrying later will help."""


def _secret_json(secret_id: str) -> dict[str, Any]:
    max_age = get_settings().secrets_max_age_seconds
    with _lock:
        held = _cached.get(secret_id)
    if held and time.monotonic() - held[0] < max_age:
        return held[1]
    try:
        answer = client("secretsmanager").get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _TRANSIENT_CODES:
            raise SecretsUnavailable(f"secret {secret_id} cannot be read now: Secrets Manager is unavailable") from exc
        raise ConfigurationError(f"secret {secret_id} cannot be read") from exc
    except BotoCoreError as exc:
        raise SecretsUnavailable(f"secret {secret_id} cannot be read now: Secrets Manager is unavailable") from exc
    try:
        value = json.loads(answer.get("SecretString") or "")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ConfigurationError(f"secret {secret_id} is not a JSON object")
    with _lock:
        _cached[secret_id] = (time.monotonic(), value)
    return value


def webhook_secret(provider: str) -> WebhookCredential:
    """The provider's key of the webhook secrets: a string, or {"username", "password"} for Basic auth."""
    secret_id = get_settings().require("webhook_secrets_id")
    value = _secret_json(secret_id).get(provider)
    if not value:
        raise ConfigurationError(f"secret {secret_id} has no value for {provider!r}")
    try:
        return WebhookCredential.of(value)
    except ValueError as exc:
        # The message names the provider and the shape, never the values.
        raise ConfigurationError(
            f"secret {secret_id} key {provider!r} must be a string or an object with username and password"
        ) from exc


def vendor_secret(key: str) -> str:
    """One value of the vendor credentials secret (e.g. `testsigma_api_key`), required when used:
    a deployment only needs the keys of the vendors its routes use."""
    secret_id = get_settings().require("vendor_secrets_id")
    value = _secret_json(secret_id).get(key)
    if not value:
        raise ConfigurationError(f"secret {secret_id} has no value for {key!r}")
    return str(value)


def forget_cached_secrets() -> None:
    """Drop cached secrets (tests and the local runtime change them or switch AWS endpoints)."""
    with _lock:
        _cached.clear()
