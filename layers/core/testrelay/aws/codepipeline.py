"""CodePipeline look-ups for a pipeline-level event, which names no commit: GetPipelineExecution
(artifact revisions) and GetPipeline (the source action's repository and branch)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from testrelay.aws.clients import client
from testrelay.observability import logger

# Answers after which a repeat cannot help: the event is normalised without the look-up.
_FINAL = (
    "PipelineNotFoundException",
    "PipelineExecutionNotFoundException",
    "AccessDeniedException",
    "ValidationException",
    "PipelineVersionNotFoundException",
)


class LookupUnavailable(Exception):
    """CodePipeline could not answer now (throttled, unreachable): the invocation fails and is retried."""


def action_executions(pipeline: str, execution_id: str) -> list[Any] | None:
    """ListActionExecutions' `actionExecutionDetails` of one execution (first page: the source actions
    run first), or None when CodePipeline refuses it for good."""
    answer = _ask(
        client("codepipeline").list_action_executions,
        pipelineName=pipeline,
        filter={"pipelineExecutionId": execution_id},
        maxResults=100,
    )
    if answer is None:
        return None
    details = answer.get("actionExecutionDetails")
    return details if isinstance(details, list) else None


def execution_and_pipeline(pipeline: str, execution_id: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """GetPipelineExecution's `pipelineExecution` and GetPipeline's `pipeline` (at the execution's
    version), each None when CodePipeline refuses it for good."""
    codepipeline = client("codepipeline")
    execution = _call(
        codepipeline.get_pipeline_execution,
        "pipelineExecution",
        pipelineName=pipeline,
        pipelineExecutionId=execution_id,
    )
    version = execution.get("pipelineVersion") if execution else None
    arguments: dict[str, Any] = {"name": pipeline}
    if isinstance(version, int) and version > 0:
        arguments["version"] = version
    return execution, _call(codepipeline.get_pipeline, "pipeline", **arguments)


def _call(operation: Any, key: str, **arguments: Any) -> dict[str, Any] | None:
    answer = _ask(operation, **arguments)
    value = answer.get(key) if answer is not None else None
    return value if isinstance(value, dict) else None


def _ask(operation: Any, **arguments: Any) -> dict[str, Any] | None:
    """The operation's answer, or None when CodePipeline refuses it for good; LookupUnavailable when a
    repeat may help."""
    try:
        answer = operation(**arguments)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _FINAL:
            logger.warning("CodePipeline look-up refused; the event is normalised without it", code=code)
            return None
        raise LookupUnavailable(f"CodePipeline {code or 'error'}: {exc}") from exc
    except ParamValidationError as exc:
        # The event's own names are not valid API parameters (an empty pipeline name): no repeat helps.
        logger.warning("CodePipeline look-up impossible for this event", error=str(exc)[:300])
        return None
    except BotoCoreError as exc:
        raise LookupUnavailable(f"CodePipeline unreachable: {exc}") from exc
    return answer if isinstance(answer, dict) else None
