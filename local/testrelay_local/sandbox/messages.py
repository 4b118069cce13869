"""What a vendor handler receives and answers, independent of the HTTP server that carries it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class MalformedBody(ValueError):
    """The request body is not the JSON the endpoint expects; the message says what is wrong."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    """Header names in lower case."""
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def credentials(self, *schemes: str) -> str | None:
        """The credential of an `Authorization: <scheme> <credential>` header, if its scheme is allowed."""
        scheme, _, credential = (self.header("authorization") or "").strip().partition(" ")
        if scheme.lower() not in {allowed.lower() for allowed in schemes}:
            return None
        return credential.strip() or None

    def json(self) -> Any:
        if not self.body.strip():
            raise MalformedBody("the request body is empty; a JSON document is expected")
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MalformedBody(f"the request body is not valid JSON: {exc}") from exc


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    """Close the connection instead of answering (the call may have been applied: a lost answer)."""

    @classmethod
    def of_json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Response:
        return cls(status, json.dumps(payload).encode(), "application/json", dict(headers or {}))

    @classmethod
    def of_text(cls, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Response:
        return cls(status, text.encode(), content_type)
