"""GitHub App authentication: a JWT signed with the App's private key (RS256) buys an installation access
token, which check runs need (a personal or Actions token cannot create them).

Tokens live an hour; each is cached per installation for this process and minted again five minutes
before it expires (or when GitHub refuses it). The installation of a repository is configured on the
route or looked up once (`GET /repos/{owner}/{repo}/installation`). Neither the key, the JWT nor a
token is ever logged: the session logs method and path only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import jwt

from testrelay.errors import ConfigurationError, VendorAuthFailed, VendorRejected
from testrelay.observability import logger
from testrelay.vendors.http import VendorSession

JWT_LIFETIME = 540
"""Seconds: GitHub takes at most ten minutes; a little less leaves room for clock drift."""
JWT_BACKDATE = 60
"""`iat` is set this far in the past, as GitHub recommends against clock drift."""
REFRESH_BEFORE = 300
"""A cached installation token is replaced when it has less than this left."""


@dataclass
class _Token:
    value: str
    expires_at: float


def _expiry(stamp: object, now: float) -> float:
    """`expires_at` of GitHub's answer (ISO 8601, `Z`); an hour from now when absent or unreadable."""
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return now + 3600


@dataclass
class GitHubApp:
    app_id: str
    private_key: str = field(repr=False)
    session: VendorSession
    clock: Callable[[], float] = time.time
    _tokens: dict[int, _Token] = field(default_factory=dict, repr=False)
    _installations: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def app_jwt(self) -> str:
        now = int(self.clock())
        claims = {"iat": now - JWT_BACKDATE, "exp": now + JWT_LIFETIME, "iss": self.app_id}
        try:
            return jwt.encode(claims, self.private_key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as exc:
            # The message names the secret key, never its value.
            raise ConfigurationError("github_app_private_key is not a PEM RSA private key") from exc

    def _as_app(self, method: str, path: str) -> object:
        return self.session.request(method, path, headers={"Authorization": f"Bearer {self.app_jwt()}"})

    def installation_for(self, repository: str, configured: int | None = None) -> int:
        if configured is not None:
            return configured
        with self._lock:
            known = self._installations.get(repository.lower())
        if known is not None:
            return known
        try:
            answer = self._as_app("GET", f"/repos/{repository}/installation")
        except VendorRejected as exc:
            if exc.status == 404:
                raise ConfigurationError(
                    f"the GitHub App {self.app_id} is not installed on {repository}: install it there "
                    "(permissions: checks write, pull requests write, metadata read)"
                ) from exc
            raise
        installation = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(installation, int) or isinstance(installation, bool):
            raise VendorRejected("github", f"GET /repos/{repository}/installation: no installation id in the answer")
        with self._lock:
            self._installations[repository.lower()] = installation
        return installation

    def token(self, installation: int) -> str:
        """A valid installation token, minted when none is cached or the cached one expires soon."""
        now = self.clock()
        with self._lock:
            cached = self._tokens.get(installation)
        if cached is not None and cached.expires_at - now > REFRESH_BEFORE:
            return cached.value
        # POST, but repeating it only mints another token: safe to retry.
        answer = self.session.request(
            "POST",
            f"/app/installations/{installation}/access_tokens",
            headers={"Authorization": f"Bearer {self.app_jwt()}"},
            repeatable=True,
        )
        value = answer.get("token") if isinstance(answer, dict) else None
        if not isinstance(value, str) or not value:
            raise VendorAuthFailed("github", f"installation {installation}: no token in GitHub's answer")
        minted = _Token(value, _expiry(answer.get("expires_at"), now))
        with self._lock:
            self._tokens[installation] = minted
        logger.info("GitHub App installation token minted", installation_id=installation, app_id=self.app_id)
        return value

    def forget(self, installation: int) -> None:
        """Drop a token GitHub refused (revoked, or the App's permissions changed)."""
        with self._lock:
            self._tokens.pop(installation, None)
