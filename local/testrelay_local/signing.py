"""Signing deliveries the way each CI does, for the demo, the CLI and tests."""

from __future__ import annotations

import hashlib
import hmac
import uuid


def github_headers(secret: str, body: bytes, event: str, delivery: str | None = None) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/testrelay-local",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": f"sha256={digest}",
    }
