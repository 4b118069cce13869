"""What every CI provider module offers, and the shared pieces they use."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, overload

from testrelay.errors import AuthenticationFailed, ConfigurationError, InvalidPayload
from testrelay.models.ci_event import CiEvent


@dataclass(frozen=True)
class Ignored:
    """A well-formed delivery the relay deliberately does nothing with (answered 2xx)."""

    reason: str
    event: str


@dataclass(frozen=True)
class WebhookCredential:
    """A provider's entry in the WebhookSecrets secret: a string (`secret`: HMAC key or shared token),
    or an object with `username` and `password` for CIs that can only send HTTP Basic auth."""

    secret: str | None = None
    username: str | None = None
    password: str | None = None

    def __post_init__(self) -> None:
        for name in ("secret", "username", "password"):
            if not isinstance(getattr(self, name), str | None):
                raise ValueError(f"{name} must be a string")
        if not self.secret and not (self.username and self.password):
            raise ValueError("needs a secret, or a username and a password")

    @classmethod
    def of(cls, value: Any) -> WebhookCredential:
        """ValueError when `value` is neither a string nor an object of those keys (and no others)."""
        if isinstance(value, str):
            return cls(secret=value)
        if not isinstance(value, Mapping) or not set(value) <= {"secret", "username", "password"}:
            raise ValueError("must be a string or an object with username and password")
        return cls(**value)

    def require_secret(self, provider: str) -> str:
        if not self.secret:
            raise ConfigurationError(f"the {provider!r} webhook secret must be a string (an HMAC key or token)")
        return self.secret


class CiProvider(Protocol):
    name: str
    invalid_payload_status: int
    """HTTP status for an authenticated body that does not parse (400, or 2xx where 4xx disables the hook)."""

    def authenticate(self, headers: Mapping[str, str], body: bytes, credential: WebhookCredential) -> None:
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
    except RecursionError as exc:
        raise InvalidPayload("body is not accepted: JSON nested too deeply") from exc
    except ValueError as exc:  # bad JSON, bad UTF-8, or a number beyond Python's int-string limit
        if "integer string conversion" in str(exc):
            raise InvalidPayload("body is not accepted: a JSON number has more than 4300 digits") from exc
        raise InvalidPayload(f"body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidPayload("body must be a JSON object")
    return data


@overload
def string(data: Any, path: str, *, required: Literal[True]) -> str: ...
@overload
def string(data: Any, path: str, *, required: bool = False) -> str | None: ...
def string(data: Any, path: str, *, required: bool = False) -> str | None:
    """A field the provider documents as a string: missing or null is None (or InvalidPayload when
    required); any other JSON type is InvalidPayload naming the field, never a guess."""
    value = optional(data, path)
    if value is None:
        if required:
            raise InvalidPayload(f"field {path!r} is missing")
        return None
    if not isinstance(value, str):
        raise InvalidPayload(f"field {path!r} must be a string, not {_json_type(value)}")
    return value


def identifier(data: Any, path: str) -> str:
    """A required id the provider sends as a number or a string."""
    value = optional(data, path)
    if value is None or value == "":
        raise InvalidPayload(f"field {path!r} is missing")
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidPayload(f"field {path!r} must be a number or a string, not {_json_type(value)}")
    return str(value)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, Mapping):
        return "an object"
    return "an array" if isinstance(value, list) else type(value).__name__


def require(data: Mapping[str, Any], path: str) -> Any:
    """Value at a dotted path, or InvalidPayload naming the missing field."""
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, Mapping) or current.get(part) is None:
            raise InvalidPayload(f"field {path!r} is missing")
        current = current[part]
    return current


def verify_token(expected: str, given: str | None, header: str) -> None:
    if not given:
        raise AuthenticationFailed(f"header {header} is missing")
    if not hmac.compare_digest(expected.encode(), given.strip().encode()):
        raise AuthenticationFailed(f"header {header} does not match the configured secret")


def verify_basic_or_token(headers: Mapping[str, str], credential: WebhookCredential) -> None:
    """For CIs that sign nothing: HTTP Basic with the configured username and password; or, with a
    string secret, that token as the Basic password (any username) or in `X-Testrelay-Token`."""
    token = headers.get("x-testrelay-token")
    if credential.secret and token:
        verify_token(credential.secret, token, "X-Testrelay-Token")
        return
    scheme, _, encoded = (headers.get("authorization") or "").strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise AuthenticationFailed("HTTP Basic credentials (or an X-Testrelay-Token header) are missing")
    try:
        username, separator, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise AuthenticationFailed("HTTP Basic credentials are not valid base64") from exc
    if not separator:
        raise AuthenticationFailed("HTTP Basic credentials have no password")
    if credential.secret:
        ok = hmac.compare_digest(credential.secret.encode(), password.encode())
    else:
        # Both compared every time, so the answer's timing does not tell which one was wrong.
        user_ok = hmac.compare_digest((credential.username or "").encode(), username.encode())
        password_ok = hmac.compare_digest((credential.password or "").encode(), password.encode())
        ok = user_ok and password_ok
    if not ok:
        raise AuthenticationFailed("HTTP Basic credentials do not match")


def optional(data: Any, path: str) -> Any:
    """Value at a dotted path, or None when any part is missing or null (vendors omit fields freely)."""
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current


def text(data: Any, *paths: str) -> str | None:
    """The first non-empty value among dotted paths, as a string."""
    for path in paths:
        value = optional(data, path)
        if value is not None and value != "" and not isinstance(value, (Mapping, list)):
            return str(value)
    return None


def integer(data: Any, *paths: str) -> int | None:
    for path in paths:
        value = optional(data, path)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        # isascii: "²".isdigit() is true; the length keeps int() within its digit limit.
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 19:
            return int(value)
    return None


def body_digest(*parts: object) -> str:
    """A dedupe key from stable body fields, for CIs whose delivery id changes on retry."""
    # surrogatepass: a lone surrogate from the body must not break hashing (the event refuses it later).
    joined = "\0".join("" if p is None else str(p) for p in parts)
    return hashlib.sha256(joined.encode("utf-8", "surrogatepass")).hexdigest()[:32]


TAG_PREFIX = "refs/tags/"
# https://host/org/repo(.git), ssh://git@host/org/repo.git or git@host:org/repo.git
_SCM_PATH = re.compile(r"^(?:[a-z+]+://[^/]+/|[^@/]+@[^:/]+:)(?P<path>.+?)(?:\.git)?/?$")


def scm_path(url: str | None) -> str | None:
    """The repository path of a clone or web URL: `https://github.com/acme/shop.git` -> `acme/shop`."""
    found = _SCM_PATH.match(url) if url else None
    return found.group("path") if found else None


def strip_ref(ref: str | None) -> str | None:
    """`refs/heads/main` and `origin/main` name the branch `main`."""
    if not ref:
        return None
    for prefix in ("refs/heads/", "origin/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref
