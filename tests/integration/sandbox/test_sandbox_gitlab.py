"""GitLab commit statuses stand-in: token auth, validation, GitLab's state transitions, listing."""

from __future__ import annotations

from typing import Any

import pytest

from testrelay_local.sandbox import DEMO_GITLAB_TOKEN, Sandbox
from tests.integration.sandbox.conftest import Api

SHA = "bcbb5ec396a2c0f828686f14fac9b80b780504f2"
PROJECT = "gitlab-org%2Fgitlab-test"


@pytest.fixture
def gitlab(sandbox: Sandbox) -> Api:
    return Api(sandbox.gitlab_url, {"PRIVATE-TOKEN": DEMO_GITLAB_TOKEN})


def post_status(gitlab: Api, sha: str = SHA, **body: Any) -> Any:
    return gitlab.post(f"/projects/{PROJECT}/statuses/{sha}", json=body)


@pytest.mark.parametrize(
    "headers", [{"PRIVATE-TOKEN": DEMO_GITLAB_TOKEN}, {"Authorization": f"Bearer {DEMO_GITLAB_TOKEN}"}]
)
def test_a_status_is_created_for_the_project_path(sandbox: Sandbox, headers: dict[str, str]) -> None:
    # Given a client with a token in either header GitLab accepts
    client = Api(sandbox.gitlab_url, headers)
    # When it posts a status for the URL-encoded project path
    response = post_status(
        client,
        state="success",
        name="testrelay/checkout",
        ref="master",
        description="6 passed",
        target_url="https://t/1",
    )
    # Then GitLab's shape comes back and the sandbox holds it under the decoded path
    assert response.status_code == 201
    status = response.json()
    assert (status["status"], status["name"], status["ref"], status["sha"]) == (
        "success",
        "testrelay/checkout",
        "master",
        SHA,
    )
    assert status["finished_at"] is not None
    assert sandbox.state()["gitlab"]["statuses"]["gitlab-org/gitlab-test"][SHA] == [status]


def test_a_bad_token_is_401(sandbox: Sandbox) -> None:
    response = post_status(Api(sandbox.gitlab_url, {"PRIVATE-TOKEN": "nope"}), state="success")
    assert (response.status_code, response.json()) == (401, {"message": "401 Unauthorized"})


@pytest.mark.parametrize(
    ("body", "sha", "status"),
    [
        ({"state": "green"}, SHA, 400),
        ({"state": "success", "description": "x" * 256}, SHA, 400),
        ({"state": "success"}, "not-a-sha", 404),
    ],
)
def test_invalid_statuses_are_refused(gitlab: Api, body: dict[str, Any], sha: str, status: int) -> None:
    assert post_status(gitlab, sha=sha, **body).status_code == status


def test_gitlab_refuses_a_transition_the_status_cannot_make(gitlab: Api) -> None:
    # Given a running status
    assert post_status(gitlab, state="running", name="ci").status_code == 201
    # When running is posted again, GitLab refuses the transition
    again = post_status(gitlab, state="running", name="ci")
    assert again.status_code == 400
    assert again.json()["message"].startswith("Cannot transition status via :run from :running")
    # And a finished status cannot be finished twice
    assert post_status(gitlab, state="success", name="ci").status_code == 201
    assert "via :success from :success" in post_status(gitlab, state="success", name="ci").json()["message"]
    # But a new pending status after a finished one starts a new status, as a retried job does
    assert post_status(gitlab, state="pending", name="ci").status_code == 201
    listed = gitlab.get(f"/projects/{PROJECT}/repository/commits/{SHA}/statuses").json()
    assert [s["status"] for s in listed] == ["pending", "success"]
