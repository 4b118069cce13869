"""AWS clients created once per process (and reused across warm invocations).

Time-outs and retries fit the function's budget (Settings: AWS_CONNECT_TIMEOUT_SECONDS,
AWS_READ_TIMEOUT_SECONDS, AWS_CALL_ATTEMPTS): botocore's defaults (60 s read, legacy retries) would let
one slow call outlive the webhook's 10 s.

Clients come straight from one botocore session: boto3 adds nothing the relay's clients use, and its
import (s3transfer with it) is ~50 ms of a cold start, so only `resource()` (DynamoDB's) imports it,
over the same session (one set of credentials, one event bus for whoever observes the calls)."""

from __future__ import annotations

from functools import cache
from typing import Any

import botocore.session
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
def session() -> botocore.session.Session:
    """The process's botocore session (credentials and region from the environment, as Lambda gives them)."""
    return botocore.session.get_session()


@cache
def client(service: str) -> Any:
    # AWS_ENDPOINT_URL (honoured by botocore itself) points these at the local runtime during development.
    return session().create_client(service, config=client_config())


@cache
def resource(service: str) -> Any:
    import boto3

    return boto3.session.Session(botocore_session=session()).resource(service, config=client_config())


def forget_clients() -> None:
    """Drop the session and its clients (tests and the local runtime switch endpoints and credentials)."""
    client.cache_clear()
    resource.cache_clear()
    session.cache_clear()
