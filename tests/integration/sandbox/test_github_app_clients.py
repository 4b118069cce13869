"""The relay's GitHub App and check-run/comment clients against the sandbox over HTTP: JWT, installation
lookup, token minted once and refreshed before expiry, the documented limits (50 annotations a request,
65,535-character summaries, 65,536-character comments), and no secret in any log line."""

from __future__ import annotations

import logging

import pytest

from testrelay.errors import ConfigurationError, VendorAuthFailed, VendorRejected
from testrelay.vendors.github import GitHubClient
from testrelay.vendors.github_app import REFRESH_BEFORE, GitHubApp
from testrelay.vendors.http import VendorSession
from testrelay_local.sandbox import DEMO_GITHUB_TOKEN, Sandbox, SandboxSeed

REPO = "octo-org/octo-repo"
SHA = "3484a3fb816e0859fd6e1cea078d76385ff50625"


def _app(sandbox: Sandbox, key: str | None = None) -> GitHubApp:
    seed = SandboxSeed.demo()
    return GitHubApp(
        seed.github_app_id, key or seed.github_app_private_key, VendorSession("github", sandbox.github_url, {})
    )


def _as_installation(sandbox: Sandbox, app: GitHubApp) -> GitHubClient:
    token = app.token(app.installation_for(REPO))
    return GitHubClient(VendorSession("github", sandbox.github_url, {"Authorization": f"Bearer {token}"}))


def test_the_app_finds_its_installation_and_mints_a_token_once(sandbox: Sandbox) -> None:
    # Given the relay's App
    app = _app(sandbox)
    # When it needs a token twice for the same repository
    first = app.token(app.installation_for(REPO))
    second = app.token(app.installation_for(REPO))
    # Then the installation was looked up once and one token minted, which GitHub takes for check runs
    assert first == second
    assert sandbox.state()["github"]["app_tokens_minted"] == 1
    calls = sandbox.state()["requests"]["github"]
    assert calls["GET /repos/{owner}/{repo}/installation"]["calls"] == 1
    client = GitHubClient(VendorSession("github", sandbox.github_url, {"Authorization": f"Bearer {first}"}))
    created = client.create_check_run(REPO, {"name": "testrelay/r", "head_sha": SHA, "status": "in_progress"})
    assert created["status"] == "in_progress"


def test_a_token_with_less_than_the_refresh_margin_left_is_minted_again(sandbox: Sandbox) -> None:
    # Given an installation whose tokens live less than the relay's refresh margin
    seed = SandboxSeed.demo().model_copy(update={"github_app_token_lifetime_s": REFRESH_BEFORE - 1})
    sandbox.load_seed(seed)
    app = GitHubApp(seed.github_app_id, seed.github_app_private_key, VendorSession("github", sandbox.github_url, {}))
    installation = app.installation_for(REPO)
    # When a token is needed twice
    first, second = app.token(installation), app.token(installation)
    # Then each is minted afresh, never used that close to its expiry
    assert first != second
    assert sandbox.state()["github"]["app_tokens_minted"] == 2


def test_a_refused_token_is_forgotten_and_minted_again(sandbox: Sandbox) -> None:
    seed = SandboxSeed.demo()
    app = GitHubApp(seed.github_app_id, seed.github_app_private_key, VendorSession("github", sandbox.github_url, {}))
    installation = app.installation_for(REPO)
    first = app.token(installation)
    app.forget(installation)
    assert app.token(installation) != first


def test_a_personal_token_cannot_create_check_runs(sandbox: Sandbox) -> None:
    client = GitHubClient(VendorSession("github", sandbox.github_url, {"Authorization": f"Bearer {DEMO_GITHUB_TOKEN}"}))
    with pytest.raises(VendorAuthFailed):
        client.create_check_run(REPO, {"name": "testrelay/r", "head_sha": SHA})


def test_a_key_that_is_not_pem_is_a_configuration_error_naming_the_key_not_its_value(sandbox: Sandbox) -> None:
    app = _app(sandbox, key="not-a-pem-secret-value")
    with pytest.raises(ConfigurationError) as raised:
        app.installation_for(REPO)
    assert "github_app_private_key" in str(raised.value)
    assert "not-a-pem-secret-value" not in str(raised.value)


def test_the_documented_limits_are_enforced(sandbox: Sandbox) -> None:
    client = _as_installation(sandbox, _app(sandbox))
    run = client.create_check_run(REPO, {"name": "testrelay/r", "head_sha": SHA})
    note = {"path": ".github", "start_line": 1, "end_line": 1, "annotation_level": "failure", "message": "m"}
    # More than 50 annotations in one request: 422
    with pytest.raises(VendorRejected) as raised:
        client.update_check_run(
            REPO, run["id"], {"output": {"title": "t", "summary": "s", "annotations": [note] * 51}}, repeatable=False
        )
    assert raised.value.status == 422
    # A summary over 65,535 characters: 422
    with pytest.raises(VendorRejected):
        client.update_check_run(REPO, run["id"], {"output": {"title": "t", "summary": "s" * 65_536}}, repeatable=True)
    # Completed without a conclusion: 422
    with pytest.raises(VendorRejected):
        client.update_check_run(REPO, run["id"], {"status": "completed"}, repeatable=True)
    # 50 at a time append
    for _ in range(2):
        answer = client.update_check_run(
            REPO, run["id"], {"output": {"title": "t", "summary": "s", "annotations": [note] * 50}}, repeatable=False
        )
    assert answer["output"]["annotations_count"] == 100
    # A comment over 65,536 characters: 422; pagination reads every comment
    with pytest.raises(VendorRejected):
        client.create_issue_comment(REPO, "5", "x" * 65_537)
    for number in range(105):
        client.create_issue_comment(REPO, "5", f"comment {number}")
    assert len(client.issue_comments(REPO, "5")) == 105


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.getMessage()} {vars(record)!r}")


def test_no_key_jwt_or_token_reaches_a_log_line(sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    # Given every log record kept, the relay's own logger's included
    caplog.set_level(logging.DEBUG)
    kept = _Kept()
    relay_logger = logging.getLogger("testrelay")
    level = relay_logger.level
    relay_logger.addHandler(kept)
    relay_logger.setLevel(logging.DEBUG)  # a local runtime of another module may have left it at WARNING
    try:
        # When the App mints a token and a call is refused
        seed = SandboxSeed.demo()
        app = _app(sandbox)
        token = app.token(app.installation_for(REPO))
        jwt_now = app.app_jwt()
        refused = GitHubClient(VendorSession("github", sandbox.github_url, {"Authorization": "Bearer wrong"}))
        with pytest.raises(VendorAuthFailed):
            refused.create_check_run(REPO, {"name": "n", "head_sha": SHA})
    finally:
        relay_logger.removeHandler(kept)
        relay_logger.setLevel(level)
    # Then what was logged names the calls, never a credential
    logged = caplog.text + "".join(repr(vars(record)) for record in caplog.records) + "".join(kept.lines)
    assert "GitHub App installation token minted" in logged
    for secret in (token, jwt_now.split(".")[2], "PRIVATE KEY", seed.github_app_private_key.splitlines()[1]):
        assert secret not in logged


def test_a_repository_without_the_app_is_a_configuration_error_saying_what_to_do(sandbox: Sandbox) -> None:
    sandbox.load_seed(SandboxSeed.demo().model_copy(update={"github_app_repositories": ["octo-org/other"]}))
    with pytest.raises(ConfigurationError) as raised:
        _app(sandbox).installation_for(REPO)
    assert "not installed on octo-org/octo-repo" in str(raised.value)
    assert "checks write" in str(raised.value)
