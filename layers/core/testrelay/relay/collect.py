"""Turning a finished run's test-case results into CaseResults, inline or in S3 when large."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from testrelay.aws.results_store import get_results, put_results
from testrelay.errors import InvalidPayload, RunNotFinished
from testrelay.models.execution import CaseResult, CaseStatus, RunCounts, RunRef
from testrelay.models.job import Job
from testrelay.models.routes import DEFAULT_RESULT_MAP
from testrelay.observability import logger
from testrelay.relay import services
from testrelay.settings import get_settings


def _case_results(answer: Mapping[str, Any]) -> Iterator[CaseResult]:
    """One CaseResult per test case, or per iteration of a data-driven case, on each machine."""
    for case in answer.get("testCases") or []:
        base = {
            "case_id": int(case["testCaseId"]),
            "name": str(case.get("testCaseName") or case["testCaseId"]),
            "suite": case.get("testSuiteName"),
            "machine": case.get("machineTitle"),
        }
        iterations = (case.get("iterationResults") or []) if case.get("isDataDrivenCase") else []
        entries = iterations or [case]
        for index, entry in enumerate(entries, start=1):
            result = str(entry.get("result") or case.get("result") or "NOT_EXECUTED").upper()
            name = base["name"] if entry is case else f"{base['name']} [iteration {index}]"
            yield CaseResult(
                **{**base, "name": name},
                result=result,
                status=DEFAULT_RESULT_MAP.get(result, CaseStatus.UNTESTED),
                case_result_id=entry.get("testCaseResultId") or case.get("testCaseResultId"),
            )


def collect_results(job: Job, run: RunRef) -> dict[str, Any]:
    answer = services.testsigma().case_results(run.run_id)
    status = str(answer.get("status") or "")
    if status and status != "STATUS_COMPLETED":
        raise RunNotFinished(f"run {run.run_id} is {status}")
    try:
        results = list(_case_results(answer))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidPayload(f"Testsigma case results of run {run.run_id} are malformed: {exc!r}") from exc

    counts = RunCounts.of_cases(results)
    items = [result.model_dump(mode="json") for result in results]
    summary: dict[str, Any] = {"count": len(items), "counts": counts.model_dump()}
    settings = get_settings()
    if len(json.dumps(items, separators=(",", ":"))) <= settings.inline_results_limit_bytes:
        summary["items"] = items
    else:
        key = f"results/{job.id}/{run.run_id}.json"
        put_results(settings.require("results_bucket"), key, items)
        summary["s3_key"] = key
    services.ledger().update_job(job.id, state="collected", counts=counts.model_dump(), summary=counts.summary())
    logger.info("case results collected", job_id=job.id, run_id=run.run_id, count=len(items), **counts.model_dump())
    return summary


def load_results(collected: Mapping[str, Any]) -> list[CaseResult]:
    if "s3_key" in collected:
        raw = get_results(get_settings().require("results_bucket"), str(collected["s3_key"]))
    else:
        raw = list(collected.get("items") or [])
    return [CaseResult.model_validate(item) for item in raw]
