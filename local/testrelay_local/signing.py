"""Signing deliveries the way each CI does, for the demo, the CLI and tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

# The event each provider sends when no other is asked for.
DEFAULT_EVENTS = {
    "github": "workflow_run",
    "gitlab": "Pipeline Hook",
    "circleci": "workflow-completed",
    "jenkins": "",
    "azure-devops": "",
    "bitbucket": "repo:commit_status_updated",
    "generic": "",
}


def _hex_hmac(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_headers(secret: str, body: bytes, event: str, delivery: str | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/testrelay-local",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": f"sha256={_hex_hmac(secret, body)}",
    }


def gitlab_headers(secret: str, event: str = "Pipeline Hook", delivery: str | None = None) -> dict[str, str]:
    """GitLab sends the token itself; `delivery` is the Idempotency-Key a retry repeats."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitLab/17.4.0",
        "X-Gitlab-Event": event,
        "X-Gitlab-Token": secret,
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
        "Idempotency-Key": delivery or str(uuid.uuid4()),
    }


def circleci_headers(secret: str, body: bytes, event: str = "workflow-completed") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "CircleCI-Webhook/1.0",
        "circleci-event-type": event,
        "circleci-signature": f"v1={_hex_hmac(secret, body)}",
    }


def basic_auth_headers(password: str, username: str = "testrelay") -> dict[str, str]:
    """Jenkins (credentials in the notification URL) and Azure DevOps (service hook Basic auth)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Content-Type": "application/json", "Authorization": f"Basic {token}"}


def bitbucket_headers(
    secret: str, body: bytes, event: str = "repo:commit_status_updated", request: str | None = None
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Event-Key": event,
        "X-Request-UUID": request or str(uuid.uuid4()),
        "X-Attempt-Number": "1",
        "X-Hub-Signature": f"sha256={_hex_hmac(secret, body)}",
    }


def generic_headers(secret: str, body: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-Testrelay-Signature": f"sha256={_hex_hmac(secret, body)}"}


def provider_headers(
    provider: str, secret: str, body: bytes, event: str | None = None, delivery: str | None = None
) -> dict[str, str]:
    """The headers `provider` would send with `body`; `delivery` is its redelivery id where it has one."""
    chosen = event or DEFAULT_EVENTS.get(provider, "")
    if provider == "github":
        return github_headers(secret, body, chosen, delivery)
    if provider == "gitlab":
        return gitlab_headers(secret, chosen, delivery)
    if provider == "circleci":
        return circleci_headers(secret, body, chosen)
    if provider in ("jenkins", "azure-devops"):
        return basic_auth_headers(secret)
    if provider == "bitbucket":
        return bitbucket_headers(secret, body, chosen, delivery)
    if provider == "generic":
        return generic_headers(secret, body)
    raise ValueError(f"no signing for provider {provider!r}; known: {', '.join(DEFAULT_EVENTS)}")
