"""AWS CodePipeline "CodePipeline Pipeline Execution State Change" events (EventBridge, default bus).

A pipeline-level event names the pipeline, the execution and its state (STARTED, SUCCEEDED, FAILED,
STOPPED, STOPPING, CANCELED, SUPERSEDED, RESUMED), the `execution-trigger` (`trigger-type`,
`trigger-detail`) and `pipeline-execution-attempt`, but **no commit, branch or repository**
(CodePipeline user guide, "Monitoring CodePipeline events"). Those come from two API answers the
caller fetches: GetPipelineExecution (`artifactRevisions[].revisionId` is the commit of a Git source,
`revisionUrl` its page) and GetPipeline (the source action's `configuration`: `FullRepositoryId` and
`BranchName` for CodeStarSourceConnection, `RepositoryName` and `BranchName` for CodeCommit, `Owner`,
`Repo` and `Branch` for the GitHub version 1 action). A V2 pipeline with Git `triggers` runs for
whichever branch a trigger's filter lets in, so its configured branch is not the execution's: for
those, ListActionExecutions' source action `outputVariables` (`BranchName`, `CommitId`,
`FullRepositoryName` / `RepositoryName`) say what the execution really took. Any answer may be missing
(no permission, a deleted pipeline): the event is then normalised with what the others say.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from testrelay.ci.base import Ignored, string, text
from testrelay.ci.codebuild import whole_number
from testrelay.ci.outcomes import normalise
from testrelay.errors import InvalidPayload
from testrelay.models.ci_event import CiEvent

SOURCE = "aws.codepipeline"
DETAIL_TYPE = "CodePipeline Pipeline Execution State Change"
STATUSES = {
    "succeeded": "success",
    "failed": "failure",
    "stopped": "cancelled",
    "canceled": "cancelled",
    "superseded": "cancelled",
}
# States after which the execution still runs: nothing to test yet.
_RUNNING = ("STARTED", "RESUMED", "STOPPING")
_COMMIT = re.compile(r"^[0-9a-f]{40}$|^[0-9a-f]{64}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


class CodePipelineEvents:
    name = "codepipeline"

    def normalise(
        self,
        event: Mapping[str, Any],
        execution: Mapping[str, Any] | None = None,
        pipeline: Mapping[str, Any] | None = None,
        action_executions: list[Any] | None = None,
    ) -> CiEvent | Ignored:
        """`execution`: GetPipelineExecution's `pipelineExecution`; `pipeline`: GetPipeline's `pipeline`;
        `action_executions`: ListActionExecutions' `actionExecutionDetails` for the execution."""
        detail = event.get("detail")
        if not isinstance(detail, Mapping):
            raise InvalidPayload("field 'detail' must be an object")
        state = string(detail, "state", required=True) or ""
        if state.upper() in _RUNNING:
            return Ignored(reason=f"CodePipeline execution is {state}, not finished", event=DETAIL_TYPE)
        name = string(detail, "pipeline", required=True) or ""
        execution_id = string(detail, "execution-id", required=True) or ""
        source = source_of(execution or {}, pipeline or {}, action_executions or [])
        region = text(event, "region") or ""
        return CiEvent(
            provider=self.name,
            event=DETAIL_TYPE,
            # One execution ends once per attempt (a retried stage is a new attempt of the same execution).
            delivery_key=f"{text(event, 'account') or ''}:{region}:{name}:{execution_id}"
            f"#{whole_number(detail.get('pipeline-execution-attempt')) or 1}",
            repository=source.get("repository") or name,
            branch=source.get("branch"),
            commit_sha=source.get("commit"),
            pipeline_id=execution_id,
            pipeline_name=name,
            run_url=console_url(region, name, execution_id),
            outcome=normalise(STATUSES, state),
        )


def has_git_triggers(pipeline: Mapping[str, Any]) -> bool:
    """A V2 pipeline whose Git triggers choose the branch per execution (ListActionExecutions needed)."""
    triggers = pipeline.get("triggers")
    return isinstance(triggers, list) and any(isinstance(t, Mapping) and t.get("gitConfiguration") for t in triggers)


def source_of(
    execution: Mapping[str, Any], pipeline: Mapping[str, Any], action_executions: list[Any] | None = None
) -> dict[str, str]:
    """Repository, branch and commit of the execution's first Git source, from the API answers."""
    taken = _taken_source(action_executions or [])
    if taken:
        return taken
    found: dict[str, str] = {}
    revisions = execution.get("artifactRevisions")
    for revision in revisions if isinstance(revisions, list) else []:
        commit = text(revision, "revisionId")
        if commit and _COMMIT.match(commit):
            found["commit"] = commit
            break
    for action in _source_actions(pipeline):
        configuration = action.get("configuration")
        if not isinstance(configuration, Mapping):
            continue
        repository = text(configuration, "FullRepositoryId", "RepositoryName")
        owner, repo = text(configuration, "Owner"), text(configuration, "Repo")
        if not repository and owner and repo:
            repository = f"{owner}/{repo}"
        if repository:
            found["repository"] = repository
            branch = text(configuration, "BranchName", "Branch")
            if branch:
                found["branch"] = branch
            break
    return found


def _taken_source(details: list[Any]) -> dict[str, str]:
    """What the execution's Git source action output (its variables), the first one that names a commit."""
    for detail in details:
        if not isinstance(detail, Mapping) or text(detail, "input.actionTypeId.category") != "Source":
            continue
        variables = (
            detail.get("output", {}).get("outputVariables") if isinstance(detail.get("output"), Mapping) else None
        )
        if not isinstance(variables, Mapping):
            continue
        commit = text(variables, "CommitId")
        if not commit or not _COMMIT.match(commit):
            continue
        found = {"commit": commit}
        repository = text(variables, "FullRepositoryName", "RepositoryName")
        branch = text(variables, "BranchName")
        if repository:
            found["repository"] = repository
        if branch:
            found["branch"] = branch
        return found
    return {}


def _source_actions(pipeline: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    stages = pipeline.get("stages")
    actions: list[Mapping[str, Any]] = []
    for stage in stages if isinstance(stages, list) else []:
        for action in stage.get("actions") or [] if isinstance(stage, Mapping) else []:
            category = text(action, "actionTypeId.category") if isinstance(action, Mapping) else None
            if category == "Source":
                actions.append(action)
    return actions


def console_url(region: str, pipeline: str, execution_id: str) -> str | None:
    if not _REGION.match(region):
        return None
    return (
        f"https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/{quote(pipeline, safe='')}"
        f"/executions/{quote(execution_id, safe='')}/timeline?region={region}"
    )
