"""CodeBuild and CodePipeline state changes normalised from AWS's published samples (events/codebuild,
events/codepipeline) and the API answers a pipeline-level event needs for its commit."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from testrelay.ci.base import Ignored
from testrelay.ci.codebuild import CodeBuildEvents
from testrelay.ci.codepipeline import CodePipelineEvents, has_git_triggers, source_of
from testrelay.models.ci_event import CiEvent
from tests.support import EVENTS

SHA = "7638417db6d59f3c431d3e1f261cc637155684cd"


def _sample(provider: str, name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / provider / name).read_text())
    return loaded


def _codebuild(name: str) -> CiEvent:
    event = CodeBuildEvents().normalise(_sample("codebuild", name))
    assert isinstance(event, CiEvent)
    return event


def test_the_user_guide_sample_names_its_project_build_and_console_page() -> None:
    event = _codebuild("build-state-change.s3-source.json")
    arn = "arn:aws:codebuild:us-west-2:123456789012:build/my-sample-project:8745a7a9-c340-456a-9166-edf953571bEX"
    assert (event.provider, event.outcome, event.delivery_key) == ("codebuild", "success", arn)
    # An S3 source names no repository: the project stands for it, and "my-source-version" is no commit
    assert (event.repository, event.commit_sha, event.branch) == ("my-sample-project", None, None)
    assert (event.pipeline_name, event.run_number) == ("my-sample-project", 55)
    assert event.run_url == (
        "https://us-west-2.console.aws.amazon.com/codesuite/codebuild/123456789012/projects/my-sample-project/"
        "build/my-sample-project%3A8745a7a9-c340-456a-9166-edf953571bEX/?region=us-west-2"
    )
    assert event.child_pipeline is False


def test_a_github_branch_build_names_repository_branch_and_the_commit_it_built() -> None:
    event = _codebuild("build-state-change.github-branch.variant.json")
    assert (event.repository, event.branch, event.commit_sha) == ("octo-org/octo-repo", "main", SHA)
    assert (event.run_number, event.outcome) == (12, "success")


def test_a_build_a_pipeline_started_is_marked_so_routes_do_not_run_twice() -> None:
    event = _codebuild("build-state-change.from-codepipeline.variant.json")
    assert event.child_pipeline is True
    assert (event.commit_sha, event.branch) == (None, None)


@pytest.mark.parametrize(
    ("version", "branch", "tag", "pull_request", "commit"),
    [
        ("refs/heads/release/2.0", "release/2.0", None, None, None),
        ("refs/tags/v1.4.0", None, "v1.4.0", None, None),
        ("pr/17", None, None, "17", None),
        (SHA, None, None, None, SHA),
        ("main", None, None, None, None),
    ],
)
def test_the_source_version_says_what_was_asked_for(
    version: str, branch: str | None, tag: str | None, pull_request: str | None, commit: str | None
) -> None:
    sample = _sample("codebuild", "build-state-change.github-branch.variant.json")
    info = sample["detail"]["additional-information"]
    info["source-version"] = version
    del info["resolved-source-version"]
    event = CodeBuildEvents().normalise(sample)
    assert isinstance(event, CiEvent)
    assert (event.branch, event.tag, event.pull_request, event.commit_sha) == (branch, tag, pull_request, commit)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("FAILED", "failure"), ("STOPPED", "cancelled"), ("FAULT", "error"), ("TIMED_OUT", "timed_out")],
)
def test_build_statuses_map_to_the_outcome_vocabulary(status: str, outcome: str) -> None:
    sample = _sample("codebuild", "build-state-change.github-branch.variant.json")
    sample["detail"]["build-status"] = status
    event = CodeBuildEvents().normalise(sample)
    assert isinstance(event, CiEvent)
    assert event.outcome == outcome


def test_a_codecommit_source_is_named_by_its_repository() -> None:
    sample = _sample("codebuild", "build-state-change.github-branch.variant.json")
    sample["detail"]["additional-information"]["source"] = {
        "type": "CODECOMMIT",
        "location": "https://git-codecommit.eu-west-1.amazonaws.com/v1/repos/shop",
    }
    event = CodeBuildEvents().normalise(sample)
    assert isinstance(event, CiEvent)
    assert event.repository == "shop"


def test_a_build_in_progress_is_ignored() -> None:
    sample = _sample("codebuild", "build-state-change.s3-source.json")
    sample["detail"]["build-status"] = "IN_PROGRESS"
    assert isinstance(CodeBuildEvents().normalise(sample), Ignored)


def test_a_started_pipeline_is_ignored() -> None:
    assert isinstance(
        CodePipelineEvents().normalise(_sample("codepipeline", "pipeline-execution-started.json")), Ignored
    )


# GetPipelineExecution's answer as the API reference documents it (a GitHub source through a connection).
EXECUTION = {
    "pipelineName": "shop-pipeline",
    "pipelineVersion": 32,
    "pipelineExecutionId": "e3f3f7a2-1c4b-4d7e-9a51-2b1c3d4e5f60",
    "status": "Succeeded",
    "artifactRevisions": [
        {
            "name": "SourceArtifact",
            "revisionId": SHA,
            "revisionSummary": '{"ProviderType":"GitHub","CommitMessage":"Fix checkout"}',
            "revisionUrl": f"https://github.com/octo-org/octo-repo/commit/{SHA}",
        }
    ],
    "trigger": {"triggerType": "Webhook", "triggerDetail": "arn:aws:codeconnections:..."},
}
PIPELINE = {
    "name": "shop-pipeline",
    "version": 32,
    "stages": [
        {
            "name": "Source",
            "actions": [
                {
                    "name": "Source",
                    "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection"},
                    "configuration": {"FullRepositoryId": "octo-org/octo-repo", "BranchName": "main"},
                }
            ],
        }
    ],
}


def test_a_finished_execution_takes_commit_and_branch_from_the_api() -> None:
    event = CodePipelineEvents().normalise(
        _sample("codepipeline", "pipeline-execution-succeeded.variant.json"), EXECUTION, PIPELINE
    )
    assert isinstance(event, CiEvent)
    assert (event.repository, event.branch, event.commit_sha) == ("octo-org/octo-repo", "main", SHA)
    assert (event.outcome, event.pipeline_name) == ("success", "shop-pipeline")
    assert event.delivery_key == "123456789012:us-west-2:shop-pipeline:e3f3f7a2-1c4b-4d7e-9a51-2b1c3d4e5f60#1"
    assert event.run_url == (
        "https://us-west-2.console.aws.amazon.com/codesuite/codepipeline/pipelines/shop-pipeline/executions/"
        "e3f3f7a2-1c4b-4d7e-9a51-2b1c3d4e5f60/timeline?region=us-west-2"
    )


# ListActionExecutions' record of the source action of an execution a V2 trigger started for another
# branch (the output variables the CodeStarSourceConnection action documents).
ACTION_EXECUTIONS = [
    {
        "pipelineExecutionId": "e3f3f7a2-1c4b-4d7e-9a51-2b1c3d4e5f60",
        "stageName": "Source",
        "actionName": "Source",
        "status": "Succeeded",
        "input": {
            "actionTypeId": {
                "category": "Source",
                "owner": "AWS",
                "provider": "CodeStarSourceConnection",
                "version": "1",
            },
            "configuration": {"FullRepositoryId": "octo-org/octo-repo", "BranchName": "main"},
        },
        "output": {
            "outputVariables": {
                "BranchName": "feature/pay",
                "CommitId": "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c",
                "FullRepositoryName": "octo-org/octo-repo",
                "ProviderType": "GitHub",
            }
        },
    },
    {"stageName": "Build", "actionName": "Build", "input": {"actionTypeId": {"category": "Build"}}, "output": {}},
]


def test_a_triggered_execution_takes_the_branch_its_source_action_took() -> None:
    pipeline = {
        **PIPELINE,
        "triggers": [
            {
                "providerType": "CodeStarSourceConnection",
                "gitConfiguration": {"sourceActionName": "Source", "push": [{"branches": {"includes": ["feature/*"]}}]},
            }
        ],
    }
    assert has_git_triggers(pipeline)
    assert not has_git_triggers(PIPELINE)
    event = CodePipelineEvents().normalise(
        _sample("codepipeline", "pipeline-execution-succeeded.variant.json"), EXECUTION, pipeline, ACTION_EXECUTIONS
    )
    assert isinstance(event, CiEvent)
    assert (event.branch, event.commit_sha) == ("feature/pay", "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c")


def test_without_the_api_the_pipeline_stands_for_the_repository() -> None:
    event = CodePipelineEvents().normalise(_sample("codepipeline", "pipeline-execution-succeeded.variant.json"))
    assert isinstance(event, CiEvent)
    assert (event.repository, event.branch, event.commit_sha) == ("shop-pipeline", None, None)


def test_an_s3_revision_is_no_commit_and_github_v1_names_owner_and_repo() -> None:
    execution = copy.deepcopy(EXECUTION)
    execution["artifactRevisions"][0]["revisionId"] = "3k1CHd.Yb2kq8_Rn4TZsB4sLD9k6r9Em"
    pipeline = copy.deepcopy(PIPELINE)
    pipeline["stages"][0]["actions"][0]["configuration"] = {"Owner": "octo-org", "Repo": "octo-repo", "Branch": "dev"}
    assert source_of(execution, pipeline) == {"repository": "octo-org/octo-repo", "branch": "dev"}


def test_a_retried_attempt_is_another_delivery() -> None:
    sample = _sample("codepipeline", "pipeline-execution-succeeded.variant.json")
    sample["detail"]["pipeline-execution-attempt"] = 2.0
    event = CodePipelineEvents().normalise(sample)
    assert isinstance(event, CiEvent)
    assert event.delivery_key.endswith("#2")
