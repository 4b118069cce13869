"""Result sets too large for a state payload are kept in S3 and travel by reference."""

from __future__ import annotations

import json
from typing import Any

from testrelay.aws.clients import client


def put_results(bucket: str, key: str, items: list[dict[str, Any]]) -> None:
    body = json.dumps(items, separators=(",", ":")).encode()
    client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def get_results(bucket: str, key: str) -> list[dict[str, Any]]:
    body = client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    items: list[dict[str, Any]] = json.loads(body)
    return items
