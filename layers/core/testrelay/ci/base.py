"""What every CI provider module offers, and the shared pieces they use."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from testrelay.errors import AuthenticationFailed, InvalidPayload
from testrelay.models.ci_event import CiEvent


@dataclass(frozen=True)
class Ignored:
    """A well-formed delivery the relay deliberately does nothing with (answered 2xx)."""

    reason: str
    event: str


class CiProvider(Protocol):
    name: str

    def authenticate(self, headers: Mapping[str, str], body: bytes, secret: str) -> None:
        """Raise AuthenticationFailed unless the delivery comes from the configured CI."""

    def parse(self, headers: Mapping[str, str], body: bytes) -> CiEvent | Ignored:
        """Normalise the delivery, or say why it is ignored; raise InvalidPayload if it does not parse."""


def verify_hmac_sha256(secret: str, body: bytes, signature: str | None, prefix: str) -> None:
    if not signature:
        raise AuthenticationFailed("signature header is missing")
    if not signature.startswith(prefix):
        raise AuthenticationFailed(f"signature header must start with {prefix!r}")
    expected = prefix + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise AuthenticationFailed("signature does not match the request body")


def load_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidPayload(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidPayload("body must be a JSON object")
    return data


def require(data: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path, or InvalidPayload naming the missing field."""
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, Mapping) or current.get(part) is None:
            raise InvalidPayload(f"field {path!r} is missing")
        current = current[part]
    return current
