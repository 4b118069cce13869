"""The GitHub App side of the GitHub stand-in: JWTs checked with the App's public key, installation
lookup, and installation access tokens that expire.

As documented: the JWT is RS256 with `iss` the App id (or client id), `exp` at most ten minutes after
`iat`; an installation token is `POST /app/installations/{id}/access_tokens` (201, an hour's life) and
check runs accept nothing else (a personal token gets 403).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from testrelay_local.sandbox.messages import Request

MAX_JWT_LIFETIME = 600
AuthKind = Literal["token", "app", "installation"]


@cache
def demo_app_key() -> str:
    """One RSA key per process for the sandbox's App (a fresh one every run: nothing secret is shipped)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass
class _Token:
    installation: int
    expires_at: float


class GithubAppAuth:
    def __init__(
        self, app_id: str, private_key: str, installation_id: int, token_lifetime: float, clock: Callable[[], float]
    ) -> None:
        self.app_id = app_id
        self.installation_id = installation_id
        self.token_lifetime = token_lifetime
        self._clock = clock
        self._public = serialization.load_pem_private_key(private_key.encode(), password=None).public_key()
        self._tokens: dict[str, _Token] = {}
        self.minted = 0

    def jwt_error(self, request: Request) -> str | None:
        """Why the request's Bearer JWT is refused, or None when it is the App's and valid now."""
        credential = request.credentials("Bearer")
        if not credential or credential.count(".") != 2:
            return "A JSON web token could not be decoded"
        try:
            claims = jwt.decode(
                credential,
                self._public,  # type: ignore[arg-type]
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"], "verify_iat": False},
                leeway=0,
            )
        except jwt.ExpiredSignatureError:
            return "'Expiration time' claim ('exp') must be a numeric value representing the future time"
        except jwt.PyJWTError:
            return "A JSON web token could not be decoded"
        if str(claims["iss"]) != self.app_id:
            return "'Issuer' claim ('iss') must be an Integer"
        if int(claims["exp"]) - int(claims["iat"]) > MAX_JWT_LIFETIME:
            return "'Expiration time' claim ('exp') is too far in the future"
        if int(claims["iat"]) > self._clock() + 60:
            return "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
        return None

    def kind(self, request: Request, personal_token: str) -> AuthKind | None:
        credential = request.credentials("Bearer", "token")
        if not credential:
            return None
        if credential == personal_token:
            return "token"
        held = self._tokens.get(credential)
        if held is not None:
            return "installation" if held.expires_at > self._clock() else None
        return "app" if self.jwt_error(request) is None else None

    def mint(self, installation: int) -> tuple[str, str]:
        token = "ghs_" + secrets.token_urlsafe(27)
        expires = self._clock() + self.token_lifetime
        self._tokens[token] = _Token(installation, expires)
        self.minted += 1
        return token, datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_stamp(clock: Callable[[], float] = time.time) -> str:
    return datetime.fromtimestamp(clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
