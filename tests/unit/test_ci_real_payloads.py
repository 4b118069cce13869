"""Published payloads beyond the shared set (events/README.md names each source), the field fixes
they prove, and the one parse boundary that turns any bad authenticated body into a clear refusal."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import quote

import pytest

from testrelay.ci.base import Ignored
from testrelay.ci.boundary import MAX_BODY_BYTES, parse_delivery
from testrelay.ci.registry import PROVIDERS
from testrelay.errors import InvalidPayload
from testrelay.models.ci_event import MAX_TEXT, MAX_URL, CiEvent
from testrelay.models.job_message import job_id_for
from testrelay.models.routes import Route
from testrelay.route_matching import mismatch
from tests.ci_fixtures import delivery
from tests.support import github_fixture


def _github_headers(delivery_id: str = "d-1", **extra: str) -> dict[str, str]:
    return {"x-github-event": "workflow_run", "x-github-delivery": delivery_id, **extra}


def _event(provider: str, headers: dict[str, str], body: bytes) -> CiEvent:
    parsed = parse_delivery(PROVIDERS[provider], headers, body)
    assert isinstance(parsed, CiEvent), parsed
    return parsed


def _published(provider: str, name: str) -> CiEvent:
    sent = delivery(provider, name)
    return _event(provider, sent.headers, sent.body)


def _route(**match: Any) -> Route:
    return Route.model_validate({"name": "r", "match": match, "testsigma": {"test_plan_id": 1}})


# ------------------------------------------------------------------ field fixes, on the real shapes


def test_github_startup_failure_is_an_error_and_every_other_conclusion_keeps_its_word() -> None:
    # Given octokit's completed workflow_run with each conclusion GitHub documents
    payload = json.loads(github_fixture("workflow_run.completed.payload.json"))
    seen = {}
    for conclusion in (
        "success",
        "failure",
        "neutral",
        "cancelled",
        "skipped",
        "timed_out",
        "action_required",
        "stale",
        "startup_failure",
    ):
        payload["workflow_run"]["conclusion"] = conclusion
        seen[conclusion] = _event("github", _github_headers(), json.dumps(payload).encode()).outcome
    # Then only startup_failure (the workflow could not start) is renamed, to the vocabulary's `error`
    assert seen.pop("startup_failure") == "error"
    assert all(word == conclusion for conclusion, word in seen.items())
    assert (
        _event(
            "github", _github_headers(), github_fixture("workflow_run.completed.startup_failure.variant.payload.json")
        ).outcome
        == "error"
    )


def test_a_fork_pull_request_is_marked_and_fires_only_routes_that_opt_in() -> None:
    # Given a completed run of a pull request from a fork whose branch is also called main
    event = _event("github", _github_headers(), github_fixture("workflow_run.completed.from-fork.variant.payload.json"))
    # Then the event says so, and a route on main of the base repository does not fire for it
    assert (event.fork, event.head_repository, event.branch) == (True, "octo-fork/octo-repo", "main")
    on_main = _route(branches=["main"])
    assert "fork" in (mismatch(on_main, event) or "")
    assert mismatch(_route(branches=["main"], forks=True), event) is None


def test_a_pull_request_of_the_base_repository_is_no_fork_and_names_its_number() -> None:
    event = _event(
        "github", _github_headers(), github_fixture("workflow_run.completed.with-pull-requests.payload.json")
    )
    assert (event.fork, event.pull_request, event.branch) == (False, "2", "master")


def test_github_form_encoded_delivery_is_accepted_with_the_signature_over_the_form_body() -> None:
    # Given the content type GitHub's settings page offers besides JSON: payload=<urlencoded JSON>
    payload = github_fixture("workflow_run.completed.payload.json")
    form = b"payload=" + quote(payload.decode(), safe="").encode()
    headers = _github_headers(**{"content-type": "application/x-www-form-urlencoded"})
    # When it is parsed
    event = _event("github", headers, form)
    # Then it is the same event as the JSON delivery
    assert event == _event("github", _github_headers(), payload)


def test_a_github_form_body_without_payload_names_the_field() -> None:
    headers = _github_headers(**{"content-type": "application/x-www-form-urlencoded"})
    with pytest.raises(InvalidPayload, match="'payload' field"):
        parse_delivery(PROVIDERS["github"], headers, b"other=1")


def test_azure_pull_request_build_takes_the_source_branch_and_names_the_pull_request() -> None:
    # Given a real pull request build (dnceng-public build 1627560: sourceBranch refs/pull/135209/merge)
    event = _published("azure-devops", "build.complete.pull-request")
    # Then the branch is the PR's source branch, never the merge ref; the PR and the fork are named
    assert event.branch == "gdv-debuginfo-to-ret-expression"
    assert (event.pull_request, event.fork, event.tag) == ("135209", True, None)
    assert event.repository == "dotnet/runtime"


def test_azure_tag_build_has_no_branch_and_routes_can_match_its_tag() -> None:
    event = _published("azure-devops", "build.complete.tag.variant")
    assert (event.branch, event.tag) == (None, "v1.0.0")
    assert mismatch(_route(branches=["main"]), event) is not None
    assert mismatch(_route(tags=["v*"]), event) is None
    assert "tag" in (mismatch(_route(tags=["release-*"]), event) or "")


def test_gitlab_tag_pipeline_exposes_its_tag() -> None:
    event = _published("gitlab", "pipeline.tag.variant")
    assert (event.branch, event.tag) == (None, "v1.0.0")


def test_gitlab_child_pipeline_starts_no_second_job_unless_a_route_opts_in() -> None:
    # Given the parent pipeline and its child (source parent_pipeline) for the same commit
    parent = _published("gitlab", "pipeline")
    child = _published("gitlab", "pipeline.child.variant")
    assert parent.commit_sha == child.commit_sha
    # Then a route takes the parent and says why not the child, unless it asks for child pipelines
    route = _route(providers=["gitlab"])
    assert mismatch(route, parent) is None
    assert "child pipeline" in (mismatch(route, child) or "")
    assert mismatch(_route(providers=["gitlab"], child_pipelines=True), child) is None


def test_gitlab_empty_body_says_what_is_missing_without_contradicting_itself() -> None:
    headers = {"x-gitlab-event": "Pipeline Hook"}
    with pytest.raises(InvalidPayload) as raised:
        parse_delivery(PROVIDERS["gitlab"], headers, b"{}")
    assert "object_kind" in str(raised.value)
    assert "Pipeline Hook" not in str(raised.value)


@pytest.mark.parametrize("name", ["workflow-completed-gitlab", "job-completed-gitlab"])
def test_circleci_pipeline_of_a_gitlab_project_names_the_gitlab_repository(name: str) -> None:
    # Given CircleCI's documented delivery for a GitLab project (slug circleci/<org id>/<project id>)
    event = _published("circleci", name)
    # Then the repository is the GitLab path from trigger_parameters, not the opaque slug
    assert event.repository == "circleci/hello-world"
    assert (event.branch, event.commit_sha) == ("main", "850a1519f25d14e968649cc420d1bd381715c05c")


def test_published_payloads_of_unfinished_runs_are_ignored_with_the_reason() -> None:
    for provider, name, reason in (
        ("gitlab", "go-playground.job-event", "not finished"),
        ("bitbucket", "go-playground.repo-commit-status-created", "not finished"),
    ):
        sent = delivery(provider, name)
        parsed = parse_delivery(PROVIDERS[provider], sent.headers, sent.body)
        assert isinstance(parsed, Ignored), (provider, name)
        assert reason in parsed.reason


def test_published_go_playground_payloads_normalise() -> None:
    assert _published("gitlab", "go-playground.pipeline-event").repository == "gitlab-org/gitlab-test"
    assert _published("azure-devops", "go-playground.build.complete").branch == "master"


# ------------------------------------------------------------------ dedupe keys identify the build


def _job_ids(provider: str, *events: CiEvent) -> set[str]:
    return {job_id_for(provider, event.delivery_key, "r") for event in events}


def test_jenkins_jobs_named_alike_in_two_folders_are_two_builds() -> None:
    # Given build 7 of the multibranch job `main` of two different projects (same name, number, phase)
    shop = _published("jenkins", "notification-multibranch-shop.variant")
    billing = _published("jenkins", "notification-multibranch-billing.variant")
    assert (shop.pipeline_name, shop.run_number) == (billing.pipeline_name, billing.run_number)
    # Then they are two jobs, and the same delivery again is one
    assert len(_job_ids("jenkins", shop, billing)) == 2
    assert len(_job_ids("jenkins", shop, _published("jenkins", "notification-multibranch-shop.variant"))) == 1


def test_jenkins_without_full_url_names_the_build_by_its_job_path() -> None:
    sent = json.loads(delivery("jenkins", "notification-multibranch-shop.variant").body)
    del sent["build"]["full_url"]
    other = copy.deepcopy(sent)
    other["url"], other["build"]["url"] = "job/billing/job/main/", "job/billing/job/main/7/"
    headers = delivery("jenkins", "notification-multibranch-shop.variant").headers
    first = _event("jenkins", headers, json.dumps(sent).encode())
    second = _event("jenkins", headers, json.dumps(other).encode())
    assert (first.pipeline_id, second.pipeline_id) == ("shop/main#7", "billing/main#7")
    assert len(_job_ids("jenkins", first, second)) == 2


def _two_builds(provider: str, name: str, change: dict[str, Any]) -> tuple[bytes, bytes, dict[str, str]]:
    """The published delivery and a second build of it: every name-like field equal, `change` applied."""
    sent = delivery(provider, name)
    other = json.loads(sent.body)
    for path, value in change.items():
        *parents, leaf = path.split(".")
        node = other
        for part in parents:
            node = node[part]
        node[leaf] = value
    return sent.body, json.dumps(other).encode(), sent.headers


@pytest.mark.parametrize(
    ("provider", "name", "change", "header_change"),
    [
        # GitLab, GitHub: a new build comes with a new delivery id; a redelivery keeps it.
        ("gitlab", "pipeline", {"object_attributes.id": 32}, {"idempotency-key": "other-delivery"}),
        ("circleci", "workflow-completed", {"id": "9c2e8a35-0000-4000-8000-000000000001"}, {}),
        ("azure-devops", "build.complete", {"id": "9c2e8a35-0000-4000-8000-000000000002"}, {}),
        # Bitbucket: a re-run of the same commit under the same status key differs in its URL.
        (
            "bitbucket",
            "repo-commit_status_updated",
            {"commit_status.url": "https://my-build-tool.com/builds/MY-PROJECT/BUILD-793"},
            {},
        ),
    ],
)
def test_two_builds_alike_in_every_name_are_two_jobs_and_a_redelivery_is_one(
    provider: str, name: str, change: dict[str, Any], header_change: dict[str, str]
) -> None:
    first, second, headers = _two_builds(provider, name, change)
    one = _event(provider, headers, first)
    other = _event(provider, {**headers, **header_change}, second)
    again = _event(provider, headers, first)
    assert (one.repository, one.pipeline_name, one.branch) == (other.repository, other.pipeline_name, other.branch)
    assert len(_job_ids(provider, one, other)) == 2
    assert len(_job_ids(provider, one, again)) == 1


def test_github_two_runs_are_two_jobs_and_a_redelivery_is_one() -> None:
    body = github_fixture("workflow_run.completed.payload.json")
    one = _event("github", _github_headers("d-1"), body)
    rerun = _event("github", _github_headers("d-2"), body)
    again = _event("github", _github_headers("d-1"), body)
    assert len(_job_ids("github", one, rerun)) == 2
    assert len(_job_ids("github", one, again)) == 1


def test_generic_two_bodies_are_two_jobs_and_the_same_body_is_one() -> None:
    one = b'{"repository": "acme/shop", "outcome": "success", "run_number": 1}'
    two = b'{"repository": "acme/shop", "outcome": "success", "run_number": 2}'
    first, second, again = (_event("generic", {}, body) for body in (one, two, one))
    assert len(_job_ids("generic", first, second)) == 2
    assert len(_job_ids("generic", first, again)) == 1


# ------------------------------------------------------------------ one boundary for any bad body

# A field each provider reads from its published payload (dotted path) for the mutations below.
USED_FIELDS = {
    ("github", ""): [
        "workflow_run.head_branch",
        "workflow_run.name",
        "workflow_run.html_url",
        "workflow_run.conclusion",
    ],
    ("gitlab", "pipeline"): ["object_attributes.ref", "project.path_with_namespace", "object_attributes.name"],
    ("circleci", "workflow-completed"): ["workflow.name", "project.slug", "pipeline.vcs.branch"],
    ("jenkins", "notification-completed"): ["name", "build.full_url", "build.scm.branch"],
    ("azure-devops", "build.complete"): ["resource.definition.name", "id", "resource.sourceGetVersion"],
    ("bitbucket", "repo-commit_status_updated"): [
        "commit_status.name",
        "repository.full_name",
        "commit_status.refname",
    ],
}
CASES = [(provider, name, path) for (provider, name), paths in USED_FIELDS.items() for path in paths]


def _sent(provider: str, name: str) -> tuple[dict[str, str], dict[str, Any]]:
    if provider == "github":
        return _github_headers(), json.loads(github_fixture("workflow_run.completed.payload.json"))
    sent = delivery(provider, name)
    return sent.headers, json.loads(sent.body)


def _outcome(provider: str, headers: dict[str, str], body: bytes) -> CiEvent | Ignored | InvalidPayload:
    try:
        return parse_delivery(PROVIDERS[provider], headers, body)
    except InvalidPayload as exc:
        return exc


def _with(payload: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(payload)
    *parents, leaf = path.split(".")
    node = changed
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return changed


@pytest.mark.parametrize(("provider", "name", "path"), CASES)
@pytest.mark.parametrize("value", [123, ["a"], {"href": "x"}, True, 7.5])
def test_a_used_field_of_the_wrong_json_type_never_escapes_the_boundary(
    provider: str, name: str, path: str, value: Any
) -> None:
    headers, payload = _sent(provider, name)
    # A CiEvent or Ignored is fine too: lenient providers read numbers as text and skip objects.
    outcome = _outcome(provider, headers, json.dumps(_with(payload, path, value)).encode())
    assert not isinstance(outcome, InvalidPayload) or str(outcome)


@pytest.mark.parametrize("field", ["head_branch", "name", "html_url", "conclusion"])
def test_github_names_the_field_of_the_wrong_type(field: str) -> None:
    headers, payload = _sent("github", "")
    with pytest.raises(InvalidPayload, match=f"workflow_run.{field}' must be a string"):
        parse_delivery(PROVIDERS["github"], headers, json.dumps(_with(payload, f"workflow_run.{field}", 7)).encode())


@pytest.mark.parametrize(("provider", "name", "path"), CASES)
def test_a_lone_surrogate_in_a_used_field_is_refused_by_name(provider: str, name: str, path: str) -> None:
    headers, payload = _sent(provider, name)
    body = json.dumps(_with(payload, path, "main-\ud800")).encode()  # json escapes it as \\ud800
    outcome = _outcome(provider, headers, body)
    if isinstance(outcome, InvalidPayload):
        assert "surrogate" in str(outcome)
    else:
        # Only fields that do not reach the event (or a quoted reason) may hold it, escaped.
        text = json.dumps(outcome.as_json()) if isinstance(outcome, CiEvent) else outcome.reason + outcome.event
        text.encode("utf-8")


@pytest.mark.parametrize(("provider", "name", "path"), CASES)
def test_an_oversized_field_is_refused_with_the_limit(provider: str, name: str, path: str) -> None:
    headers, payload = _sent(provider, name)
    body = json.dumps(_with(payload, path, "x" * 1_100_000)).encode()
    outcome = _outcome(provider, headers, body)
    if isinstance(outcome, InvalidPayload):
        assert f"at most {MAX_TEXT} characters" in str(outcome) or f"at most {MAX_URL} characters" in str(outcome)
    else:
        assert len(json.dumps(outcome.as_json()) if isinstance(outcome, CiEvent) else outcome.reason) < 100_000


@pytest.mark.parametrize(("provider", "name"), list(USED_FIELDS))
def test_huge_numbers_deep_nesting_and_huge_bodies_are_refused_by_every_provider(provider: str, name: str) -> None:
    headers, payload = _sent(provider, name)
    field = USED_FIELDS[(provider, name)][0]
    marker = "__value__"
    template = json.dumps(_with(payload, field, marker))
    for raw, reason in (
        ("1" * 5000, "4300 digits"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ):
        body = template.replace(json.dumps(marker), raw).encode()
        with pytest.raises(InvalidPayload, match=reason):
            parse_delivery(PROVIDERS[provider], headers, body)
    with pytest.raises(InvalidPayload, match=str(MAX_BODY_BYTES)):
        parse_delivery(PROVIDERS[provider], headers, b" " * (MAX_BODY_BYTES + 1))


def test_a_digit_string_python_cannot_read_as_an_int_is_no_number() -> None:
    # "²" is a digit to str.isdigit() but not to int(); a run number of it is simply absent.
    headers, payload = _sent("gitlab", "pipeline")
    event = _event("gitlab", headers, json.dumps(_with(payload, "object_attributes.iid", "²")).encode())
    assert event.run_number is None
