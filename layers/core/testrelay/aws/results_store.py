"""Result sets too large for a state payload are kept in S3, in JSON-lines parts, and travel by reference.

Parts are written and read one at a time, so memory holds one part, never the whole set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from testrelay.aws.clients import client


def part_key(prefix: str, index: int) -> str:
    return f"{prefix}/part-{index:05d}.jsonl"


def put_part(bucket: str, prefix: str, index: int, items: Iterable[dict[str, Any]]) -> None:
    body = "".join(json.dumps(item, separators=(",", ":")) + "\n" for item in items).encode()
    client("s3").put_object(Bucket=bucket, Key=part_key(prefix, index), Body=body, ContentType="application/x-ndjson")


def read_part(bucket: str, prefix: str, index: int) -> Iterator[dict[str, Any]]:
    body = client("s3").get_object(Bucket=bucket, Key=part_key(prefix, index))["Body"]
    for line in body.iter_lines():
        if line:
            yield json.loads(line)


def read_parts(bucket: str, prefix: str, parts: int) -> Iterator[dict[str, Any]]:
    for index in range(parts):
        yield from read_part(bucket, prefix, index)
