"""The relay's Bitbucket Code Insights and GitLab merge-request note clients against the sandbox over
HTTP, with the documented limits: 100 annotations a request, 1,000 a report, a deleted report taking
its annotations; a note at most 1,000,000 characters, notes read page by page."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from testrelay.errors import VendorRejected
from testrelay.vendors.bitbucket import BitbucketClient
from testrelay.vendors.gitlab import GitLabClient
from testrelay.vendors.http import VendorSession
from testrelay_local.sandbox import DEMO_BITBUCKET_APP_PASSWORD, DEMO_BITBUCKET_USERNAME, DEMO_GITLAB_TOKEN, Sandbox

SHA = "bcbb5ec396a2c0f828686f14fac9b80b780504f2"
REPORT = {"title": "testrelay · r", "report_type": "TEST", "result": "FAILED", "data": []}


def _bitbucket(sandbox: Sandbox) -> BitbucketClient:
    basic = base64.b64encode(f"{DEMO_BITBUCKET_USERNAME}:{DEMO_BITBUCKET_APP_PASSWORD}".encode()).decode()
    return BitbucketClient(VendorSession("bitbucket", sandbox.bitbucket_url, {"Authorization": f"Basic {basic}"}))


def _notes(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {"external_id": f"r-{n:04d}", "annotation_type": "BUG", "summary": f"case {n} failed", "result": "FAILED"}
        for n in range(start, start + count)
    ]


def _held(sandbox: Sandbox) -> list[dict[str, Any]]:
    annotations: list[dict[str, Any]] = sandbox.state()["bitbucket"]["reports"]["ws/repo"][SHA]["r"]["annotations"]
    return annotations


def test_bitbucket_takes_100_annotations_a_request_and_1000_a_report(sandbox: Sandbox) -> None:
    client = _bitbucket(sandbox)
    client.put_report("ws/repo", SHA, "r", REPORT)
    with pytest.raises(VendorRejected) as raised:
        client.add_annotations("ws/repo", SHA, "r", _notes(101))
    assert raised.value.status == 400
    for start in range(0, 1000, 100):
        client.add_annotations("ws/repo", SHA, "r", _notes(100, start))
    assert len(_held(sandbox)) == 1000
    with pytest.raises(VendorRejected):
        client.add_annotations("ws/repo", SHA, "r", _notes(1, 1000))


def test_a_deleted_bitbucket_report_takes_its_annotations_and_a_missing_one_is_no_error(sandbox: Sandbox) -> None:
    client = _bitbucket(sandbox)
    client.put_report("ws/repo", SHA, "r", REPORT)
    client.add_annotations("ws/repo", SHA, "r", _notes(3))
    client.put_report("ws/repo", SHA, "r", REPORT)
    assert len(_held(sandbox)) == 3  # a replaced report keeps them (the sandbox's assumed variant)
    client.delete_report("ws/repo", SHA, "r")
    client.delete_report("ws/repo", SHA, "r")
    client.put_report("ws/repo", SHA, "r", REPORT)
    assert _held(sandbox) == []


def test_gitlab_notes_are_read_page_by_page_and_bodies_are_capped(sandbox: Sandbox) -> None:
    client = GitLabClient(VendorSession("gitlab", sandbox.gitlab_url, {"PRIVATE-TOKEN": DEMO_GITLAB_TOKEN}))
    for number in range(130):
        client.create_merge_request_note("gitlab-org/gitlab-test", "1", f"note {number}")
    notes = client.merge_request_notes("gitlab-org/gitlab-test", "1")
    assert [n["body"] for n in notes] == [f"note {number}" for number in range(130)]
    with pytest.raises(VendorRejected):
        client.create_merge_request_note("gitlab-org/gitlab-test", "1", "x" * 1_000_001)
    edited = client.update_merge_request_note("gitlab-org/gitlab-test", "1", int(notes[0]["id"]), "edited")
    assert edited["body"] == "edited"
