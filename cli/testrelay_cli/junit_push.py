"""`testrelay push-junit`: sign a JUnit report and hand it to the relay, as a CI step would.

Reports up to DIRECT_LIMIT go in the request; larger ones through the pre-signed S3 upload (API
Gateway refuses request bodies over 10 MB), streamed from disk with progress.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import requests

from testrelay_cli.cli_errors import FAILED, CliError
from testrelay_cli.stack_target import LOCAL_WEBHOOK_SECRET, read_local_state

DIRECT_LIMIT = 6 * 1024 * 1024
CHUNK = 256 * 1024


class PushFailed(CliError):
    """The relay refused the report; the message is its answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message, FAILED)


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def local_defaults(path: Path | None = None) -> tuple[str, str]:
    """The running `testrelay local`'s API base URL and its default webhook secret."""
    webhook_url = str(read_local_state(path)["webhook_url"])
    return webhook_url.split("/webhooks/", 1)[0], os.environ.get("TESTRELAY_SECRET", LOCAL_WEBHOOK_SECRET)


class _Progress:
    """A file read in chunks that reports how much has gone; sized, so the PUT carries Content-Length
    (pre-signed S3 PUTs refuse chunked bodies)."""

    def __init__(self, stream: BinaryIO, size: int, emit: Callable[[int, int], None]) -> None:
        self.stream, self.size, self.emit, self.sent = stream, size, emit, 0

    def __len__(self) -> int:
        return self.size

    def read(self, amount: int = CHUNK) -> bytes:
        chunk = self.stream.read(min(amount if amount > 0 else CHUNK, CHUNK))
        self.sent += len(chunk)
        self.emit(self.sent, self.size)
        return chunk


def _answer(response: requests.Response) -> dict[str, Any]:
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {"message": response.text[:500]}
    if response.status_code >= 300:
        raise PushFailed(f"HTTP {response.status_code}: {body.get('message') or body.get('status') or body}")
    return body


def shard_line(shard: Mapping[str, str]) -> bytes:
    """What the relay's signature of a sharded run's report covers before the body: run key, shard and
    attempt as sent, one per line (the relay's `signed_shard_line`)."""
    return "".join(f"{shard.get(name, '')}\n" for name in ("run_key", "shard", "attempt")).encode()


def push_junit(
    report: Path,
    route: str,
    base_url: str,
    secret: str,
    context: Mapping[str, str] | None = None,
    direct_limit: int = DIRECT_LIMIT,
    progress: Callable[[int, int], None] = lambda sent, size: None,
    shard: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Send the report; the relay's answer (job id, and the upload id when uploaded). `shard`: the
    report's run key, and optionally its shard (`3/8`) and attempt, for one run per sharded CI run."""
    base = f"{base_url.rstrip('/')}/reports/junit/{route}"
    context = {k: v for k, v in (context or {}).items() if v}
    shard = {k: v for k, v in (shard or {}).items() if v}
    size = report.stat().st_size
    if size <= direct_limit:
        # A report in the request dedupes on its content: the unsigned query carries labels only.
        context.pop("delivery_id", None)
        body = report.read_bytes()
        progress(size, size)
        signed = shard_line(shard) + body if shard else body
        headers = {"Content-Type": "application/xml", "X-Testrelay-Signature": sign(secret, signed)}
        return _answer(requests.post(base, params={**context, **shard}, data=body, headers=headers, timeout=60))

    signed_empty = {"X-Testrelay-Signature": sign(secret, b"")}
    started = _answer(requests.post(f"{base}/uploads", headers=signed_empty, timeout=30))
    with report.open("rb") as stream:
        put = requests.put(started["upload_url"], data=_Progress(stream, size, progress), timeout=600)
    if put.status_code >= 300:
        raise PushFailed(f"upload to S3 failed: HTTP {put.status_code} {put.text[:300]}")
    done = json.dumps({**context, **shard, "upload_id": started["upload_id"]}).encode()
    answer = _answer(
        requests.post(
            f"{base_url.rstrip('/')}{started['complete_path']}",
            data=done,
            headers={"Content-Type": "application/json", "X-Testrelay-Signature": sign(secret, done)},
            timeout=30,
        )
    )
    return answer


def push_done(
    route: str, base_url: str, secret: str, run_key: str, shards: int | None, context: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Tell the relay every report of `run_key` was sent: its job gathers them without waiting longer."""
    body: dict[str, Any] = {k: v for k, v in (context or {}).items() if v and k != "delivery_id"}
    body["run_key"] = run_key
    if shards is not None:
        body["shards"] = shards
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "X-Testrelay-Signature": sign(secret, raw)}
    return _answer(
        requests.post(f"{base_url.rstrip('/')}/reports/junit/{route}/done", data=raw, headers=headers, timeout=30)
    )
