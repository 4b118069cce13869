"""The repository's sample inputs, as the relay receives them: the CI vendors' published deliveries
(events/<provider>/), a job of the demo route of config/routes.yaml, a Lambda context. Shared by the
tests and the bench scripts."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from testrelay.ci.github import GitHubProvider
from testrelay.models.ci_event import CiEvent
from testrelay.models.job import Job
from testrelay.models.routes import RouteAction
from testrelay.routing import load_routes
from testrelay_local.functions import ROOT
from testrelay_local.sandbox import DEMO_TM_STATUSES
from testrelay_local.sandbox.seed import BsCaseSeed, BsProjectSeed, TmCaseSeed, TmProjectSeed

EVENTS = ROOT / "events"

# A testsigma_tm target's `status_ids` for the sandbox's demo Test Management statuses, as lines of a
# routes file (inside `status_ids:` of a target).
TM_STATUS_IDS_YAML = "\n".join(
    f"          {status}: {DEMO_TM_STATUSES[name]}"
    for status, name in (
        ("passed", "Passed"),
        ("failed", "Failed"),
        ("blocked", "Blocked"),
        ("skipped", "Skipped"),
        ("untested", "Untested"),
    )
)


def numbered_projects(tm_project: str, bs_project: str, name: str, cases: int) -> dict[str, Any]:
    """Seed fields for a Test Management and a BrowserStack project that both hold cases TC-1..TC-<cases>."""
    return {
        "tm_projects": {
            tm_project: TmProjectSeed(
                name=name,
                cases=[TmCaseSeed(id=f"tm-{n}", human_id=f"TC-{n}", title=f"case {n}") for n in range(1, cases + 1)],
            )
        },
        "bs_projects": {
            bs_project: BsProjectSeed(
                name=name,
                cases=[BsCaseSeed(identifier=f"TC-{n}", title=f"case {n}") for n in range(1, cases + 1)],
            )
        },
    }


def github_fixture(name: str) -> bytes:
    """The vendor-published payload, byte for byte (signatures cover the raw bytes)."""
    return (EVENTS / "github" / name).read_bytes()


@dataclass
class FakeLambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def github_event(delivery: str | None = None) -> CiEvent:
    """GitHub's published workflow_run.completed payload, normalised as the webhook would."""
    body = github_fixture("workflow_run.completed.payload.json")
    headers = {"x-github-event": "workflow_run", "x-github-delivery": delivery or str(uuid.uuid4())}
    event = GitHubProvider().parse(headers, body)
    assert isinstance(event, CiEvent)
    return event


def demo_job(delivery: str | None = None, **changes: Any) -> Job:
    """A job for the demo route of config/routes.yaml; `changes` replace parts of the route,
    e.g. polling={"deadline_seconds": 1} or testsigma={"test_plan_id": 999}."""
    route = load_routes(ROOT / "config" / "routes.yaml").routes[0].action()
    raw = route.model_dump()
    for key, value in changes.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) else value
    return Job.for_event(github_event(delivery), RouteAction.model_validate(raw))


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
