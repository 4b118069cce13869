"""Bitbucket Cloud build statuses stand-in: Basic auth, required fields, same key overwrites."""

from __future__ import annotations

import pytest

from testrelay_local.sandbox import DEMO_BITBUCKET_APP_PASSWORD, DEMO_BITBUCKET_USERNAME, Sandbox
from tests.integration.sandbox.conftest import Api

SHA = "9fec847784abb10b2fa567ee63b85bd238955d0e"
BASE = f"/repositories/team_name/repo_name/commit/{SHA}/statuses"


@pytest.fixture
def bitbucket(sandbox: Sandbox) -> Api:
    api = Api(sandbox.bitbucket_url)
    api.session.auth = (DEMO_BITBUCKET_USERNAME, DEMO_BITBUCKET_APP_PASSWORD)
    return api


def test_the_same_key_overwrites_the_status(bitbucket: Api, sandbox: Sandbox) -> None:
    # Given a status under a key
    first = bitbucket.post(
        BASE + "/build", json={"key": "testrelay-x", "state": "INPROGRESS", "url": "https://t/1", "name": "testrelay/x"}
    )
    assert first.status_code == 201
    # When the same key is posted again with another state
    second = bitbucket.post(
        BASE + "/build", json={"key": "testrelay-x", "state": "FAILED", "url": "https://t/1", "description": "1 failed"}
    )
    # Then the one status changed in place
    assert second.status_code == 201
    assert second.json()["uuid"] == first.json()["uuid"]
    listed = bitbucket.get(BASE).json()
    assert [(s["key"], s["state"], s["description"]) for s in listed["values"]] == [
        ("testrelay-x", "FAILED", "1 failed")
    ]
    assert bitbucket.get(BASE + "/build/testrelay-x").json()["state"] == "FAILED"
    assert sandbox.state()["bitbucket"]["statuses"]["team_name/repo_name"][SHA][0]["state"] == "FAILED"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"state": "SUCCESSFUL", "url": "https://t"}, "key"),
        ({"key": "k", "state": "SUCCESSFUL"}, "url"),
        ({"key": "k", "state": "GREEN", "url": "https://t"}, "state"),
    ],
)
def test_missing_or_invalid_fields_are_named(bitbucket: Api, body: dict[str, str], field: str) -> None:
    response = bitbucket.post(BASE + "/build", json=body)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_wrong_credentials_are_401(sandbox: Sandbox) -> None:
    api = Api(sandbox.bitbucket_url)
    api.session.auth = (DEMO_BITBUCKET_USERNAME, "wrong")
    response = api.post(BASE + "/build", json={"key": "k", "state": "SUCCESSFUL", "url": "https://t"})
    assert response.status_code == 401
    assert response.json()["type"] == "error"
