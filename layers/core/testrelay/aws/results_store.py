"""Result sets too large for a state payload are kept in S3, in JSON-lines parts, and travel by reference;
JUnit reports are kept there raw, from upload until they are parsed.

Parts are written and read one at a time, so memory holds one part, never the whole set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import closing
from typing import IO, Any, cast

from botocore.exceptions import ClientError

from testrelay.aws.clients import client
from testrelay.errors import InvalidPayload


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


def report_key(name: str) -> str:
    """Where a JUnit report is kept: `reports/`, the only prefix the webhook function may write."""
    return f"reports/{name}.xml"


def put_report(bucket: str, key: str, body: bytes) -> None:
    client("s3").put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/xml")


def report_exists(bucket: str, key: str) -> bool:
    try:
        client("s3").head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def open_report(bucket: str, key: str) -> closing[IO[bytes]]:
    """The report as a stream: read as it is parsed, never held whole."""
    try:
        body = client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
            raise InvalidPayload(f"JUnit report {key} is not in the results bucket (expired after 30 days?)") from exc
        raise
    return closing(cast(IO[bytes], body))


def presigned_post(bucket: str, key: str, expires_in: int, max_bytes: int) -> dict[str, Any]:
    """A pre-signed S3 POST (`url` and the form `fields` to send with the file): unlike a pre-signed PUT
    its policy can bound the size, so S3 itself refuses an empty file or one over `max_bytes`."""
    post: dict[str, Any] = client("s3").generate_presigned_post(
        Bucket=bucket,
        Key=key,
        Fields={"Content-Type": "application/xml"},
        Conditions=[{"Content-Type": "application/xml"}, ["content-length-range", 1, max_bytes]],
        ExpiresIn=expires_in,
    )
    return post
