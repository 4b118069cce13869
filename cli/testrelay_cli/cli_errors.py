"""What the CLI says when a command cannot do what was asked: one line naming the problem and what to
do about it. Known failures (a file, the relay, AWS) are translated here, once, so every command says
the same thing for the same cause."""

from __future__ import annotations

import errno

import requests
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    TokenRetrievalError,
)

from testrelay.errors import ConfigurationError

# Exit codes, documented in the README's operator CLI section.
OK = 0
FAILED = 1  # the command ran and what it followed failed (a job, a target, a refused report)
CANNOT = 2  # the command could not do what was asked (bad input, relay unreachable, AWS credentials)
INTERNAL = 3  # a bug in testrelay: the guard in main() turned an unexpected exception into one line
INTERRUPTED = 130

_EXPIRED = {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
_BAD_KEYS = {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "AuthFailure"}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


class CliError(Exception):
    """A failure the user can act on; the message says what is wrong and what to do."""

    def __init__(self, message: str, code: int = CANNOT) -> None:
        super().__init__(message)
        self.code = code


def _file_error(exc: OSError) -> str | None:
    where = exc.filename or "the file"
    if isinstance(exc, FileNotFoundError):
        return f"{where}: no such file; check the path"
    if isinstance(exc, IsADirectoryError):
        return f"{where}: is a directory; give the path of a file inside it"
    if isinstance(exc, PermissionError):
        return f"{where}: permission denied; make it readable (chmod) or run as its owner"
    if exc.errno == errno.EADDRINUSE:
        return "the port is already in use (another `testrelay local`?): stop it or pass another --port"
    return None


def _aws_client_error(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    if code in _EXPIRED:
        return "your AWS credentials have expired: refresh them (e.g. `aws sso login`) and try again"
    if code in _BAD_KEYS:
        return "AWS does not accept your credentials: check AWS_PROFILE or the access key in use"
    if code in _DENIED:
        return f"AWS denied {exc.operation_name}: your credentials lack the permission ({message})"
    if code == "ValidationError" and "does not exist" in message:
        return f"{message}: check --stack and --region (a stack lives in one region)"
    return f"AWS refused {exc.operation_name}: {code}: {message}"


def explain(exc: BaseException) -> str | None:
    """The one line for a known failure; None for one that is a bug."""
    if isinstance(exc, CliError | ConfigurationError):
        return str(exc)
    if isinstance(exc, OSError) and not isinstance(exc, requests.RequestException):
        return _file_error(exc)
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return "no AWS credentials found: set AWS_PROFILE, run `aws configure` or `aws sso login`, then retry"
    if isinstance(exc, TokenRetrievalError):
        return "your AWS SSO session has expired: run `aws sso login` and try again"
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region or set AWS_DEFAULT_REGION"
    if isinstance(exc, EndpointConnectionError):
        where = exc.kwargs.get("endpoint_url")
        return f"cannot reach {where}: check --region and your network (or that `testrelay local` still runs)"
    if isinstance(exc, ClientError):
        return _aws_client_error(exc)
    if isinstance(exc, BotoCoreError):
        return f"AWS: {exc}"
    if isinstance(exc, requests.ConnectionError):
        url = exc.request.url if exc.request is not None else "the relay"
        return f"cannot connect to {url}: is the relay running there? check --url"
    if isinstance(exc, requests.Timeout):
        return "the relay did not answer in time: retry, or check that it is healthy"
    if isinstance(
        exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema | requests.exceptions.InvalidSchema
    ):
        problem = str(exc).split(". Perhaps", 1)[0]  # requests' guess at https:// is wrong for a local relay
        return f"{problem}: give a full URL such as http://127.0.0.1:8080/webhooks/github"
    return None
