"""Every CI vendor's published payload, authenticated with the headers it came with and normalised
to the fields routes match on; and the variants the vendors really send."""

from __future__ import annotations

import json
from typing import Any

import pytest

from testrelay.ci.base import Ignored, WebhookCredential
from testrelay.ci.bitbucket import BitbucketProvider
from testrelay.ci.circleci import CircleCiProvider
from testrelay.ci.generic import GenericProvider
from testrelay.ci.gitlab import GitLabProvider
from testrelay.ci.registry import PROVIDERS
from testrelay.errors import InvalidPayload
from testrelay.models import routes
from testrelay.models.ci_event import CiEvent
from testrelay.models.job import Job
from tests.ci_fixtures import ALL, FIXTURE_BASIC, FIXTURE_SECRET, SHARED_FOLDERS, delivery
from tests.support import EVENTS, SHARED_FIXTURES


def credential_for(provider: str) -> WebhookCredential:
    return WebhookCredential.of(FIXTURE_BASIC if provider in ("jenkins", "azure-devops") else FIXTURE_SECRET)


EXPECTED: dict[tuple[str, str], CiEvent] = {
    ("gitlab", "pipeline"): CiEvent(
        provider="gitlab",
        event="pipeline",
        delivery_key="f5e5f430-f57b-4e6e-9fac-d9128cd7232f",  # Idempotency-Key wins over the event UUID
        repository="gitlab-org/gitlab-test",
        branch="master",
        pull_request="1",  # a merge request pipeline names its merge request
        commit_sha="bcbb5ec396a2c0f828686f14fac9b80b780504f2",
        pipeline_id="31",
        pipeline_name="Pipeline for branch: master",
        run_number=3,
        run_url="http://example.com/gitlab-org/gitlab-test/-/pipelines/31",
        outcome="success",
    ),
    ("circleci", "workflow-completed"): CiEvent(
        provider="circleci",
        event="workflow-completed",
        delivery_key="3888f21b-eaa7-38e3-8f3d-75a63bba8895",
        repository="circleci/webhook-service",
        branch="main",
        commit_sha="1dc6aa69429bff4806ad6afe58d3d8f57e25973e",
        pipeline_id="fda08377-fe7e-46b1-8992-3a7aaecac9c3",
        pipeline_name="build-test-deploy",
        run_number=130,
        run_url="https://app.circleci.com/pipelines/github/circleci/webhook-service/130/workflows/fda08377-fe7e-46b1-8992-3a7aaecac9c3",
        outcome="success",
    ),
    ("circleci", "job-completed"): CiEvent(
        provider="circleci",
        event="job-completed",
        delivery_key="8bd71c28-4969-3677-8940-3e3a61c46660",
        repository="circleci/webhook-service",
        branch="main",
        commit_sha="1dc6aa69429bff4806ad6afe58d3d8f57e25973e",
        pipeline_id="fda08377-fe7e-46b1-8992-3a7aaecac9c3",
        pipeline_name="test",
        run_number=130,
        run_url="https://app.circleci.com/pipelines/github/circleci/webhook-service/130/workflows/fda08377-fe7e-46b1-8992-3a7aaecac9c3/jobs/136",
        outcome="success",
    ),
    ("jenkins", "notification-completed"): CiEvent(
        provider="jenkins",
        event="build",
        delivery_key="http://localhost:8080/job/asgard/18/:COMPLETED",  # the build's URL names it
        repository="evgeny-goldin/asgard",
        branch="master",  # "origin/master" names the branch master
        commit_sha="c6d86dc654b12425e706bcf951adfe5a8627a517",
        pipeline_id="asgard#18",
        pipeline_name="asgard",
        run_number=18,
        run_url="http://localhost:8080/job/asgard/18/",
        outcome="success",
    ),
    ("azure-devops", "build.complete"): CiEvent(
        provider="azure-devops",
        event="build.complete",
        delivery_key="4a5d99d6-1c75-4e53-91b9-ee80057d4ce3",
        repository="be9b3917-87e6-42a4-a549-2bc06a7a878f",  # an XAML build names only its project
        branch="master",
        commit_sha="600c52d2d5b655caa111abfd863e5a9bd304bb0e",
        pipeline_id="2",
        pipeline_name="ConsumerAddressModule",
        run_number=2,
        run_url="https://dev.azure.com/fabrikam-fiber-inc/web/build.aspx?pcguid=5023c10b-bef3-41c3-bf53-686c4e34ee9e&builduri=vstfs%3a%2f%2f%2fBuild%2fBuild%2f3",
        outcome="success",
    ),
    ("bitbucket", "repo-commit_status_updated"): CiEvent(
        provider="bitbucket",
        event="repo:commit_status_updated",
        delivery_key="307354733d0260a4e17681c40170a700",
        repository="team_name/repo_name",
        branch=None,
        commit_sha="9fec847784abb10b2fa567ee63b85bd238955d0e",
        pipeline_id="mybuildtool",
        pipeline_name="Unit Tests (Python)",
        run_number=None,
        run_url="https://my-build-tool.com/builds/MY-PROJECT/BUILD-792",
        outcome="success",
    ),
}


@pytest.mark.parametrize(("provider", "name"), ALL)
def test_each_published_payload_authenticates_and_normalises(provider: str, name: str) -> None:
    # Given the vendor's payload with the headers it sent (signatures over these exact bytes)
    sent = delivery(provider, name)
    module = PROVIDERS[provider]
    # When the relay authenticates and parses it
    module.authenticate(sent.headers, sent.body, credential_for(provider))
    event = module.parse(sent.headers, sent.body)
    # Then every field a route matches on comes out of the payload
    assert event == EXPECTED[(provider, name)]


def test_every_shared_fixture_has_an_expectation() -> None:
    assert sorted(EXPECTED) == sorted(ALL)


def test_event_copies_are_the_vendor_bytes() -> None:
    # The copies under events/ must stay byte-identical to the shared vendor fixtures.
    if not SHARED_FIXTURES.is_dir():
        pytest.skip("shared fixtures are not beside this checkout")
    for provider, shared in SHARED_FOLDERS.items():
        originals = sorted((SHARED_FIXTURES / shared).glob("*.json"))
        assert originals, shared
        # events/ holds more payloads than the shared set (events/README.md); never fewer or other bytes.
        copies = {path.name for path in (EVENTS / provider).glob("*.json")}
        assert {path.name for path in originals} <= copies, provider
        for original in originals:
            assert (EVENTS / provider / original.name).read_bytes() == original.read_bytes(), original


# ------------------------------------------------------------------ variants the vendors really send


def _json(sent_body: bytes) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(sent_body)
    return loaded


def _parse(provider: str, headers: dict[str, str], payload: dict[str, Any]) -> CiEvent | Ignored:
    return PROVIDERS[provider].parse(headers, json.dumps(payload).encode())


GITLAB_JOB: dict[str, Any] = {
    "object_kind": "build",
    "ref": "main",
    "tag": False,
    "sha": "2293ada6b400935a1378653304eaf6221e0fdb8f",
    "build_id": 1977,
    "build_name": "e2e",
    "build_stage": "test",
    "build_status": "failed",
    "pipeline_id": 2366,
    "project_id": 380,
    "project_name": "Gitlab Org / Gitlab Test",
    "commit": {"id": 2366, "sha": "2293ada6b400935a1378653304eaf6221e0fdb8f", "status": "failed"},
    "repository": {"name": "gitlab_test", "homepage": "http://192.168.64.1:3005/gitlab-org/gitlab-test"},
    "project": None,
}


def test_a_gitlab_job_takes_its_sha_not_commit_id_which_is_the_pipeline() -> None:
    # Given a Job Hook whose commit.id is the pipeline id and whose project object is null
    headers = {"x-gitlab-event": "Job Hook", "x-gitlab-event-uuid": "e-1"}
    # When it is parsed
    event = _parse("gitlab", headers, GITLAB_JOB)
    # Then the commit is the job's sha, the repository comes from the homepage, the delivery from the event UUID
    assert isinstance(event, CiEvent)
    assert event.commit_sha == "2293ada6b400935a1378653304eaf6221e0fdb8f"
    assert (event.event, event.pipeline_id, event.pipeline_name) == ("job", "2366", "e2e")
    assert event.repository == "gitlab-org/gitlab-test"
    assert event.run_url == "http://192.168.64.1:3005/gitlab-org/gitlab-test/-/jobs/1977"
    assert (event.outcome, event.delivery_key) == ("failure", "e-1")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"object_attributes": {"status": "running"}}, "not finished"),
        ({"object_attributes": {"status": "success", "source": "external"}}, "external commit statuses"),
        ({"object_kind": "push"}, "does not start test runs"),
    ],
)
def test_gitlab_unfinished_external_and_other_events_are_ignored(change: dict[str, Any], reason: str) -> None:
    payload = {**_json(delivery("gitlab", "pipeline").body), **change}
    parsed = _parse("gitlab", {"x-gitlab-event": "Pipeline Hook"}, payload)
    assert isinstance(parsed, Ignored)
    assert reason in parsed.reason


def test_gitlab_statuses_of_testrelay_itself_never_start_a_run() -> None:
    parsed = _parse("gitlab", {}, {**GITLAB_JOB, "build_name": "testrelay/octo-checkout", "build_status": "success"})
    assert isinstance(parsed, Ignored)


def test_gitlab_tag_pipelines_have_no_branch_and_old_gitlab_still_gets_a_stable_key() -> None:
    payload = _json(delivery("gitlab", "pipeline").body)
    payload["object_attributes"]["tag"] = True
    first = _parse("gitlab", {}, payload)
    again = _parse("gitlab", {}, payload)
    assert isinstance(first, CiEvent)
    assert isinstance(again, CiEvent)
    assert first.branch is None
    assert first.delivery_key == again.delivery_key


def test_circleci_projects_outside_github_carry_git_data_in_trigger_parameters() -> None:
    # Given a workflow-completed of a GitLab-hosted (circleci-native) project: no pipeline.vcs
    payload = _json(delivery("circleci", "workflow-completed").body)
    del payload["pipeline"]["vcs"]
    payload["pipeline"]["trigger_parameters"] = {
        "git": {"checkout_sha": "a" * 40, "branch": "feature/x", "repo_name": "webhook-service"}
    }
    payload["project"]["slug"] = "circleci/5a7b/9c0d"
    payload["workflow"]["status"] = "failed"
    event = _parse("circleci", {"circleci-event-type": "workflow-completed"}, payload)
    assert isinstance(event, CiEvent)
    assert (event.branch, event.commit_sha, event.repository) == ("feature/x", "a" * 40, "circleci/5a7b/9c0d")
    assert event.outcome == "failure"


def test_circleci_ping_and_missing_git_data_are_tolerated() -> None:
    parsed = _parse("circleci", {"circleci-event-type": "ping"}, {"id": "1", "type": "ping"})
    assert isinstance(parsed, Ignored)
    payload = _json(delivery("circleci", "job-completed").body)
    payload["pipeline"]["vcs"] = None
    event = _parse("circleci", {"circleci-event-type": "job-completed"}, payload)
    assert isinstance(event, CiEvent)
    assert (event.branch, event.commit_sha) == (None, None)


@pytest.mark.parametrize(
    ("phase", "reason"),
    [("FINALIZED", "repeats COMPLETED"), ("STARTED", "acts on COMPLETED"), ("QUEUED", "acts on COMPLETED")],
)
def test_jenkins_acts_on_completed_only_so_one_build_starts_one_job(phase: str, reason: str) -> None:
    payload = _json(delivery("jenkins", "notification-completed").body)
    payload["build"]["phase"] = phase
    parsed = _parse("jenkins", {}, payload)
    assert isinstance(parsed, Ignored)
    assert reason in parsed.reason


@pytest.mark.parametrize(
    ("status", "outcome"), [("UNSTABLE", "unstable"), ("FAILURE", "failure"), ("ABORTED", "cancelled")]
)
def test_jenkins_statuses_map_to_the_outcome_vocabulary(status: str, outcome: str) -> None:
    payload = _json(delivery("jenkins", "notification-completed").body)
    payload["build"]["status"] = status
    del payload["build"]["scm"]
    event = _parse("jenkins", {}, payload)
    assert isinstance(event, CiEvent)
    assert event.outcome == outcome
    assert (event.repository, event.commit_sha) == ("asgard", None)  # no SCM: the job name


AZURE_NEWER_RESOURCE: dict[str, Any] = {
    "id": 2727068,
    "buildNumber": "20241202.1",
    "status": "completed",
    "result": "partiallySucceeded",
    "url": "https://dev.azure.com/FabrikamFiber/_apis/build/Builds/2727068",
    "definition": {"id": 7, "name": "FabrikamFiber CI"},
    "project": {"id": "p-1", "name": "FabrikamFiber"},
    "sourceBranch": "refs/heads/main",
    "sourceVersion": "b" * 40,
    "repository": {"id": "fabrikam/web", "type": "GitHub"},
    "_links": {"web": {"href": "https://dev.azure.com/FabrikamFiber/web/_build/results?buildId=2727068"}},
}


def test_azure_newer_payloads_use_result_source_branch_and_repository() -> None:
    payload = {"id": "n-1", "eventType": "build.complete", "resource": AZURE_NEWER_RESOURCE}
    event = _parse("azure-devops", {}, payload)
    assert event == CiEvent(
        provider="azure-devops",
        event="build.complete",
        delivery_key="n-1",
        repository="fabrikam/web",
        branch="main",
        commit_sha="b" * 40,
        pipeline_id="2727068",
        pipeline_name="FabrikamFiber CI",
        run_number=2727068,
        run_url="https://dev.azure.com/FabrikamFiber/web/_build/results?buildId=2727068",
        outcome="unstable",
    )


def test_azure_other_events_and_unfinished_builds_are_ignored() -> None:
    assert isinstance(_parse("azure-devops", {}, {"id": "1", "eventType": "git.push"}), Ignored)
    unfinished = {**AZURE_NEWER_RESOURCE, "result": None, "status": "inProgress"}
    assert isinstance(
        _parse("azure-devops", {}, {"id": "1", "eventType": "build.complete", "resource": unfinished}), Ignored
    )


def test_bitbucket_retries_under_a_new_request_uuid_keep_their_dedupe_key() -> None:
    sent = delivery("bitbucket", "repo-commit_status_updated")
    retry = {**sent.headers, "x-request-uuid": "00000000-0000-4000-8000-0000000000a2", "x-attempt-number": "2"}
    first = BitbucketProvider().parse(sent.headers, sent.body)
    second = BitbucketProvider().parse(retry, sent.body)
    assert isinstance(first, CiEvent)
    assert isinstance(second, CiEvent)
    assert first.delivery_key == second.delivery_key
    # while a later update of the status is a new delivery
    payload = _json(sent.body)
    payload["commit_status"]["updated_on"] = "2015-11-20T09:00:00+00:00"
    later = _parse("bitbucket", sent.headers, payload)
    assert isinstance(later, CiEvent)
    assert later.delivery_key != first.delivery_key


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"state": "INPROGRESS"}, "not finished"), ({"key": "testrelay-octo-checkout"}, "testrelay's own")],
)
def test_bitbucket_in_progress_and_own_statuses_are_ignored(change: dict[str, Any], reason: str) -> None:
    sent = delivery("bitbucket", "repo-commit_status_updated")
    payload = _json(sent.body)
    payload["commit_status"].update(change)
    parsed = _parse("bitbucket", sent.headers, payload)
    assert isinstance(parsed, Ignored)
    assert reason in parsed.reason


def test_the_generic_hook_needs_only_repository_and_outcome() -> None:
    body = b'{"repository": "acme/shop", "outcome": "success"}'
    event = PROVIDERS["generic"].parse({}, body)
    assert isinstance(event, CiEvent)
    assert (event.event, event.repository, event.outcome) == ("pipeline", "acme/shop", "success")
    # the same body is the same delivery
    again = PROVIDERS["generic"].parse({}, body)
    assert isinstance(again, CiEvent)
    assert again.delivery_key == event.delivery_key


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"repository": "acme/shop", "outcome": "green"}', "outcome"),
        (b'{"outcome": "success"}', "repository"),
        (b'{"repository": "a/b", "outcome": "success", "colour": 1}', "colour"),
        (b"[1]", "JSON object"),
    ],
)
def test_generic_bodies_that_do_not_fit_say_which_field(body: bytes, message: str) -> None:
    with pytest.raises(InvalidPayload, match=message):
        PROVIDERS["generic"].parse({}, body)


def test_gitlab_answers_unparseable_bodies_2xx_and_others_400() -> None:
    # GitLab disables a hook for good after repeated 4xx: its parse errors are answered 200 "ignored".
    assert GitLabProvider.invalid_payload_status == 200
    assert CircleCiProvider.invalid_payload_status == 400


def test_a_generic_hook_naming_a_testsigma_run_becomes_a_result_sync_job() -> None:
    body = b'{"repository": "acme/shop", "outcome": "success", "testsigma_run_id": 4711}'
    event = GenericProvider().parse({}, body)
    assert isinstance(event, CiEvent)
    job = Job.for_event(event, routes.RouteAction(name="r", testsigma=routes.TestsigmaPlan(test_plan_id=1)))
    assert (job.kind, job.testsigma_run_id) == ("result_sync", 4711)
