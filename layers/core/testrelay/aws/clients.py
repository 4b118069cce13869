"""boto3 clients created once per process (and reused across warm invocations)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3


@cache
def client(service: str) -> Any:
    # AWS_ENDPOINT_URL (honoured by boto3 itself) points these at the local runtime during development.
    return boto3.client(service)


@cache
def resource(service: str) -> Any:
    return boto3.resource(service)
