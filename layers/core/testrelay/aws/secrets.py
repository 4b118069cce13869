"""Secrets (webhook secrets, vendor keys) from Secrets Manager, cached for a few minutes."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from testrelay.aws.clients import client
from testrelay.ci.base import WebhookCredential
from testrelay.errors import ConfigurationError, RelayError
from testrelay.settings import get_settings

# Secrets Manager answers that say "not now", not "not configured": the caller may try again later.
_TRANSIENT_CODES = frozenset(
    {"ThrottlingException", "TooManyRequestsException", "InternalServiceError", "ServiceUnavailable", "RequestTimeout"}
)


class SecretsUnavailable(RelayError):
    """Secrets Manager could not be reached or throttled the read: retrying later will help."""


def _transient(exc: BaseException) -> bool:
    # Powertools re-raises every failure as GetParameterError; the botocore error is its context.
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ClientError):
        return cause.response.get("Error", {}).get("Code") in _TRANSIENT_CODES
    return isinstance(cause, BotoCoreError)


@cache
def _provider() -> SecretsProvider:
    # One provider per process: its cache is what spares Secrets Manager a call per invocation.
    return SecretsProvider(boto3_client=client("secretsmanager"))


def _secret_json(secret_id: str) -> dict[str, Any]:
    try:
        value = _provider().get(secret_id, transform="json", max_age=get_settings().secrets_max_age_seconds)
    except TransformParameterError as exc:
        raise ConfigurationError(f"secret {secret_id} is not a JSON object") from exc
    except GetParameterError as exc:
        if _transient(exc):
            raise SecretsUnavailable(f"secret {secret_id} cannot be read now: Secrets Manager is unavailable") from exc
        raise ConfigurationError(f"secret {secret_id} cannot be read") from exc
    if not isinstance(value, dict):
        raise ConfigurationError(f"secret {secret_id} is not a JSON object")
    return value


def webhook_secret(provider: str) -> WebhookCredential:
    """The provider's key of the webhook secrets: a string, or {"username", "password"} for Basic auth."""
    secret_id = get_settings().require("webhook_secrets_id")
    value = _secret_json(secret_id).get(provider)
    if not value:
        raise ConfigurationError(f"secret {secret_id} has no value for {provider!r}")
    try:
        return WebhookCredential.of(value)
    except ValidationError as exc:
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
    """Drop cached secrets and the client (tests and the local runtime switch AWS endpoints)."""
    _provider.cache_clear()
