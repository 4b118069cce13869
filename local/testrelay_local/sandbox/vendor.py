"""What every vendor stand-in provides: its routes, its credential check and its own error shapes."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from testrelay_local.sandbox.messages import Request, Response
from testrelay_local.sandbox.seed import VendorBehaviour

VendorName = Literal["testsigma", "testsigma_tm", "browserstack_tm", "github", "gitlab", "bitbucket"]
Handler = Callable[[Request, dict[str, str]], Response]

_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    """Path relative to the vendor's base URL, with `{name}` placeholders for one path segment each."""
    handler: Handler

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.template}"

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("^" + _PARAM.sub(r"(?P<\1>[^/]+)", self.template) + "/?$")


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[Route, re.Pattern[str]]] = []

    def add(self, method: str, template: str, handler: Handler) -> None:
        route = Route(method, template, handler)
        self._routes.append((route, route.pattern))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for route, pattern in self._routes:
            found = pattern.match(path)
            if found and route.method == method:
                return route, found.groupdict()
        return None


class VendorApi(ABC):
    """One vendor's API. Handlers run under the sandbox lock, so they may mutate state freely."""

    name: ClassVar[VendorName]
    prefix: ClassVar[str]
    """Path of the vendor's base URL on the sandbox, e.g. `/testsigma/api/v1`."""

    def __init__(self, behaviour: VendorBehaviour | None = None) -> None:
        self.router = Router()
        self.behaviour = behaviour or VendorBehaviour()
        """The undocumented points' variants in force (replaced by `POST /_sandbox/config`)."""

    @abstractmethod
    def authorized(self, request: Request) -> bool: ...

    @abstractmethod
    def error(self, status: int, message: str) -> Response:
        """An error in the vendor's own shape."""

    def unauthorized(self) -> Response:
        return self.error(401, "Unauthorized: missing or invalid credentials")

    def malformed(self, message: str) -> Response:
        return self.error(400, message)

    def throttled(self) -> Response:
        response = self.error(429, "Too many requests")
        response.headers["Retry-After"] = "1"
        return response

    def server_error(self) -> Response:
        return Response.of_text(503, "Service Unavailable")

    def timed_out(self) -> Response:
        return Response.of_text(504, "Gateway Timeout")

    def decorate(self, response: Response) -> Response:
        """Adds what the vendor puts on every answer, faults and errors included."""
        return response

    @abstractmethod
    def snapshot(self) -> dict[str, Any]:
        """Everything the vendor holds, as JSON-ready data."""
