"""The CI vendors' published webhook payloads (events/<provider>/), with the headers they came with."""

from __future__ import annotations

from testrelay_local.samples import Delivery, delivery

# Re-exported: tests import the deliveries from here.
__all__ = ["Delivery", "delivery"]

FIXTURE_SECRET = "test-secret-placeholder"  # the shared fixtures' published placeholder
FIXTURE_BASIC = {"username": "placeholder-user", "password": "placeholder-password"}
# events/<folder> holds the copy of /work/shared/fixtures/<shared folder>.
SHARED_FOLDERS = {
    "gitlab": "gitlab",
    "circleci": "circleci",
    "jenkins": "jenkins",
    "azure-devops": "azure-devops",
    "bitbucket": "bitbucket-cloud",
}


ALL = [
    ("gitlab", "pipeline"),
    ("circleci", "workflow-completed"),
    ("circleci", "job-completed"),
    ("jenkins", "notification-completed"),
    ("azure-devops", "build.complete"),
    ("bitbucket", "repo-commit_status_updated"),
]
