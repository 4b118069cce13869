"""The relay's GitLab and Bitbucket clients against the sandbox: posting a status is safe to repeat."""

from __future__ import annotations

import base64

from testrelay.vendors.bitbucket import BitbucketClient
from testrelay.vendors.gitlab import GitLabClient
from testrelay.vendors.http import VendorSession
from testrelay_local.sandbox import DEMO_BITBUCKET_APP_PASSWORD, DEMO_BITBUCKET_USERNAME, DEMO_GITLAB_TOKEN, Sandbox

SHA = "bcbb5ec396a2c0f828686f14fac9b80b780504f2"


def test_gitlab_status_repeated_is_no_error_and_stays_one_status(sandbox: Sandbox) -> None:
    # Given the relay's GitLab client
    client = GitLabClient(VendorSession("gitlab", sandbox.gitlab_url, {"PRIVATE-TOKEN": DEMO_GITLAB_TOKEN}))
    # When the same final status is posted twice (a retried ReportToCi), with a long description
    for _ in range(2):
        client.create_commit_status(
            "gitlab-org/gitlab-test", SHA, "failed", "testrelay/r", "x" * 300, "https://t/1", "master", "31"
        )
    # Then GitLab holds one status, its text cut to GitLab's 255 characters
    [status] = sandbox.state()["gitlab"]["statuses"]["gitlab-org/gitlab-test"][SHA]
    assert (status["status"], status["pipeline_id"], len(status["description"])) == ("failed", 31, 255)


def test_bitbucket_status_repeated_overwrites_the_same_key(sandbox: Sandbox) -> None:
    basic = base64.b64encode(f"{DEMO_BITBUCKET_USERNAME}:{DEMO_BITBUCKET_APP_PASSWORD}".encode()).decode()
    client = BitbucketClient(VendorSession("bitbucket", sandbox.bitbucket_url, {"Authorization": f"Basic {basic}"}))
    for state in ("INPROGRESS", "SUCCESSFUL"):
        client.create_build_status(
            "ws/repo", SHA, state, "testrelay-r", "https://t/1", "testrelay/r", "6 passed", "main"
        )
    [status] = sandbox.state()["bitbucket"]["statuses"]["ws/repo"][SHA]
    assert (status["state"], status["refname"]) == ("SUCCESSFUL", "main")
