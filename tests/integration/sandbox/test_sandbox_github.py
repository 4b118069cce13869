"""GitHub commit statuses stand-in: create, validate, list newest first, combine per context."""

from __future__ import annotations

from typing import Any

import pytest

from testrelay_local.sandbox import DEMO_GITHUB_TOKEN, Sandbox
from tests.integration.sandbox.conftest import Api

SHA = "6dcb09b5b57875f334f61aebed695e2e4193db5e"
REPO = "octo-org/octo-repo"


def post_status(github: Api, sha: str = SHA, **body: Any) -> Any:
    return github.post(f"/repos/{REPO}/statuses/{sha}", json=body)


@pytest.mark.parametrize("scheme", ["token", "Bearer"])
def test_create_status_answers_the_created_status(github: Api, sandbox: Sandbox, scheme: str) -> None:
    # Given a client using either scheme GitHub accepts for a token
    client = Api(github.base_url, {"Authorization": f"{scheme} {DEMO_GITHUB_TOKEN}"})

    # When it posts a commit status
    response = post_status(
        client,
        state="success",
        target_url="https://app.testsigma.com/ui/runs/1001",
        description="Testsigma: 6 passed",
        context="testrelay/checkout",
    )

    # Then the created status comes back as GitHub shapes it
    assert response.status_code == 201
    status = response.json()
    assert (status["state"], status["context"], status["description"]) == (
        "success",
        "testrelay/checkout",
        "Testsigma: 6 passed",
    )
    assert status["target_url"] == "https://app.testsigma.com/ui/runs/1001"
    assert isinstance(status["id"], int)
    assert status["created_at"].endswith("Z")
    assert status["url"].endswith(f"/github/repos/{REPO}/statuses/{SHA}")
    # And the sandbox holds it under the repository and commit
    assert sandbox.state()["github"]["statuses"][REPO][SHA] == [status]


def test_context_defaults_to_default(github: Api) -> None:
    # Given a status without a context
    # When it is posted
    status = post_status(github, state="pending").json()

    # Then GitHub's default context applies
    assert status["context"] == "default"


@pytest.mark.parametrize(
    ("body", "sha", "field"),
    [
        ({"state": "passed"}, SHA, "state"),
        ({}, SHA, "state"),
        ({"state": "success", "description": "x" * 141}, SHA, "description"),
        ({"state": "success"}, "main", "sha"),
        ({"state": "success"}, SHA[:39] + "g", "sha"),
    ],
)
def test_invalid_status_is_a_422_validation_failed(
    github: Api, sandbox: Sandbox, body: dict[str, Any], sha: str, field: str
) -> None:
    # Given a status GitHub would refuse
    # When it is posted
    response = post_status(github, sha=sha, **body)

    # Then GitHub's "Validation Failed" shape names the field, and nothing is stored
    assert response.status_code == 422
    answer = response.json()
    assert answer["message"] == "Validation Failed"
    assert field in [error["field"] for error in answer["errors"]]
    assert "documentation_url" in answer
    assert sandbox.state()["github"]["statuses"] == {}


def test_description_of_exactly_140_characters_is_accepted(github: Api) -> None:
    # Given a description at the limit
    # When it is posted
    response = post_status(github, state="failure", description="d" * 140)

    # Then it is stored whole
    assert response.status_code == 201
    assert len(response.json()["description"]) == 140


def test_statuses_are_listed_newest_first_and_all_kept(github: Api) -> None:
    # Given three statuses for one commit, two in the same context
    for state, context in [("pending", "testrelay"), ("success", "lint"), ("failure", "testrelay")]:
        assert post_status(github, state=state, context=context).status_code == 201

    # When the commit's statuses are listed
    response = github.get(f"/repos/{REPO}/commits/{SHA}/statuses")

    # Then all three come back, newest first
    assert response.status_code == 200
    assert [(s["state"], s["context"]) for s in response.json()] == [
        ("failure", "testrelay"),
        ("success", "lint"),
        ("pending", "testrelay"),
    ]
    # And another commit has none
    assert github.get(f"/repos/{REPO}/commits/{'0' * 40}/statuses").json() == []


def test_status_list_pages_link_to_the_next(github: Api) -> None:
    # Given three statuses
    for state in ("pending", "pending", "success"):
        post_status(github, state=state)

    # When they are listed two per page
    first = github.get(f"/repos/{REPO}/commits/{SHA}/statuses", params={"per_page": 2})
    second = github.get(f"/repos/{REPO}/commits/{SHA}/statuses", params={"per_page": 2, "page": 2})

    # Then the first page links to the second, which has the oldest status
    assert len(first.json()) == 2
    assert 'rel="next"' in first.headers["Link"]
    assert [s["state"] for s in second.json()] == ["pending"]
    assert "Link" not in second.headers


@pytest.mark.parametrize(
    ("posted", "combined"),
    [
        ([], "pending"),
        ([("failure", "testrelay"), ("success", "testrelay"), ("success", "lint")], "success"),
        ([("success", "testrelay"), ("error", "lint")], "failure"),
        ([("success", "testrelay"), ("pending", "lint")], "pending"),
    ],
)
def test_combined_status_keeps_the_latest_per_context(
    github: Api, posted: list[tuple[str, str]], combined: str
) -> None:
    # Given statuses posted in order
    for state, context in posted:
        post_status(github, state=state, context=context)

    # When the combined status of the commit is read
    answer = github.get(f"/repos/{REPO}/commits/{SHA}/status").json()

    # Then the latest status of each context decides
    assert answer["state"] == combined
    assert answer["sha"] == SHA
    assert answer["total_count"] == len({context for _, context in posted})
    latest = {s["context"]: s["state"] for s in answer["statuses"]}
    assert latest == {context: state for state, context in posted}


@pytest.mark.parametrize("authorization", [None, "token wrong", "Basic c2FuZGJveA=="])
def test_bad_credentials_are_a_401(github: Api, sandbox: Sandbox, authorization: str | None) -> None:
    # Given a client without the accepted token
    client = Api(github.base_url, {"Authorization": authorization} if authorization else {})

    # When it posts a status
    response = post_status(client, state="success")

    # Then GitHub's answer is "Bad credentials" and nothing is stored
    assert response.status_code == 401
    assert response.json()["message"] == "Bad credentials"
    assert sandbox.state()["github"]["statuses"] == {}


def test_malformed_json_is_a_400(github: Api) -> None:
    # Given a body that is not JSON
    # When it is posted
    response = github.post(f"/repos/{REPO}/statuses/{SHA}", data=b"state=success")

    # Then GitHub's parse error comes back
    assert response.status_code == 400
    assert response.json()["message"].startswith("Problems parsing JSON")
