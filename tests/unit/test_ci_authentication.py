"""Per provider: the vendor's own headers authenticate; a tampered body, a wrong secret or a missing
header is refused (and the webhook answers 401)."""

from __future__ import annotations

import base64

import pytest

from testrelay.ci.base import WebhookCredential
from testrelay.ci.registry import PROVIDERS
from testrelay.errors import AuthenticationFailed, ConfigurationError
from testrelay_local.signing import provider_headers
from tests.ci_fixtures import FIXTURE_BASIC, FIXTURE_SECRET, delivery

# Signed over the body: a changed byte breaks the signature.
SIGNED = [
    ("circleci", "workflow-completed", "circleci-signature"),
    ("circleci", "job-completed", "circleci-signature"),
    ("bitbucket", "repo-commit_status_updated", "x-hub-signature"),
]
# The CI sends a shared secret (token or Basic credentials) that says who sent it, not what.
TOKEN = [
    ("gitlab", "pipeline", "x-gitlab-token"),
    ("jenkins", "notification-completed", "authorization"),
    ("azure-devops", "build.complete", "authorization"),
]
BASIC = {"jenkins", "azure-devops"}


def _credential(provider: str, wrong: bool = False) -> WebhookCredential:
    if provider in BASIC:
        password = "not-the-password" if wrong else FIXTURE_BASIC["password"]
        return WebhookCredential(username=FIXTURE_BASIC["username"], password=password)
    return WebhookCredential(secret="not-the-secret" if wrong else FIXTURE_SECRET)


@pytest.mark.parametrize(("provider", "name", "header"), SIGNED)
def test_a_tampered_body_is_refused(provider: str, name: str, header: str) -> None:
    sent = delivery(provider, name)
    tampered = sent.body.replace(b"Python", b"Pyth0n").replace(b'"success"', b'"failed"', 1)
    assert tampered != sent.body
    with pytest.raises(AuthenticationFailed, match="does not match"):
        PROVIDERS[provider].authenticate(sent.headers, tampered, _credential(provider))


@pytest.mark.parametrize(("provider", "name", "header"), [*SIGNED, *TOKEN])
def test_a_wrong_secret_is_refused(provider: str, name: str, header: str) -> None:
    sent = delivery(provider, name)
    with pytest.raises(AuthenticationFailed):
        PROVIDERS[provider].authenticate(sent.headers, sent.body, _credential(provider, wrong=True))


@pytest.mark.parametrize(("provider", "name", "header"), [*SIGNED, *TOKEN])
def test_a_missing_header_is_refused(provider: str, name: str, header: str) -> None:
    sent = delivery(provider, name)
    headers = {key: value for key, value in sent.headers.items() if key != header}
    with pytest.raises(AuthenticationFailed, match="missing"):
        PROVIDERS[provider].authenticate(headers, sent.body, _credential(provider))


@pytest.mark.parametrize("provider", ["github", "circleci", "bitbucket", "generic"])
def test_hmac_providers_check_their_own_signature_of_the_body(provider: str) -> None:
    body = b'{"repository": "acme/shop", "outcome": "success"}'
    headers = {k.lower(): v for k, v in provider_headers(provider, "s3cret", body).items()}
    PROVIDERS[provider].authenticate(headers, body, WebhookCredential(secret="s3cret"))
    with pytest.raises(AuthenticationFailed, match="does not match"):
        PROVIDERS[provider].authenticate(headers, body + b" ", WebhookCredential(secret="s3cret"))
    with pytest.raises(AuthenticationFailed, match="does not match"):
        PROVIDERS[provider].authenticate(headers, body, WebhookCredential(secret="other"))


def test_circleci_checks_v1_among_several_signature_versions() -> None:
    sent = delivery("circleci", "workflow-completed")
    headers = {**sent.headers, "circleci-signature": "v2=ffff," + sent.headers["circleci-signature"]}
    PROVIDERS["circleci"].authenticate(headers, sent.body, _credential("circleci"))
    with pytest.raises(AuthenticationFailed, match="no v1"):
        PROVIDERS["circleci"].authenticate({"circleci-signature": "v2=ffff"}, sent.body, _credential("circleci"))


@pytest.mark.parametrize("provider", ["jenkins", "azure-devops"])
def test_a_token_secret_is_accepted_as_basic_password_or_header(provider: str) -> None:
    token = WebhookCredential.of("tok-123")
    basic = base64.b64encode(b"any-user:tok-123").decode()
    PROVIDERS[provider].authenticate({"authorization": f"Basic {basic}"}, b"{}", token)
    PROVIDERS[provider].authenticate({"x-testrelay-token": "tok-123"}, b"{}", token)
    with pytest.raises(AuthenticationFailed):
        PROVIDERS[provider].authenticate({"x-testrelay-token": "tok-124"}, b"{}", token)
    wrong_user = base64.b64encode(b"someone:placeholder-password").decode()
    with pytest.raises(AuthenticationFailed, match="do not match"):
        PROVIDERS[provider].authenticate({"authorization": f"Basic {wrong_user}"}, b"{}", _credential(provider))
    with pytest.raises(AuthenticationFailed, match="base64"):
        PROVIDERS[provider].authenticate({"authorization": "Basic %%%"}, b"{}", _credential(provider))


def test_hmac_providers_refuse_a_basic_auth_credential_as_misconfiguration() -> None:
    basic = WebhookCredential.of(FIXTURE_BASIC)
    sent = delivery("gitlab", "pipeline")
    with pytest.raises(ConfigurationError, match="must be a string"):
        PROVIDERS["gitlab"].authenticate(sent.headers, sent.body, basic)


def test_a_credential_needs_a_secret_or_both_username_and_password() -> None:
    with pytest.raises(ValueError, match="username and a password"):
        WebhookCredential.of({"username": "only"})
