"""The CI vendors' published webhook payloads (events/<provider>/), with the headers they came with."""

from __future__ import annotations

import json
from dataclasses import dataclass

from tests.support import EVENTS

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


@dataclass(frozen=True)
class Delivery:
    provider: str
    name: str
    body: bytes
    headers: dict[str, str]
    """Lower-cased, as the webhook handler passes them on."""


def delivery(provider: str, name: str) -> Delivery:
    """`name` is the payload file's stem, e.g. `pipeline` for events/gitlab/pipeline.json."""
    folder = EVENTS / provider
    body = (folder / f"{name}.json").read_bytes()
    headers = json.loads((folder / f"{name}.headers.json").read_text())
    return Delivery(provider, name, body, {key.lower(): value for key, value in headers.items()})


ALL = [
    ("gitlab", "pipeline"),
    ("circleci", "workflow-completed"),
    ("circleci", "job-completed"),
    ("jenkins", "notification-completed"),
    ("azure-devops", "build.complete"),
    ("bitbucket", "repo-commit_status_updated"),
]
