"""boto3 clients created once per process (and reused across warm invocations).

Time-outs and retries fit the function's budget (Settings: AWS_CONNECT_TIMEOUT_SECONDS,
AWS_READ_TIMEOUT_SECONDS, AWS_CALL_ATTEMPTS): botocore's defaults (60 s read, legacy retries) would let
one slow call outlive the webhook's 10 s."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from testrelay.settings import get_settings


def client_config() -> Config:
    settings = get_settings()
    return Config(
        connect_timeout=settings.aws_connect_timeout_seconds,
        read_timeout=settings.aws_read_timeout_seconds,
        # `standard`: retries throttling and transient errors with jittered backoff; max_attempts counts the first.
        retries={"mode": "standard", "max_attempts": settings.aws_call_attempts},
    )


@cache
def client(service: str) -> Any:
    # AWS_ENDPOINT_URL (honoured by boto3 itself) points these at the local runtime during development.
    return boto3.client(service, config=client_config())


@cache
def resource(service: str) -> Any:
    return boto3.resource(service, config=client_config())
