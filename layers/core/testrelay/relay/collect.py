"""Turning a finished run's test-case results (or a JUnit report's) into CaseResults, page by page: inline when small,
else JSON-lines parts in S3 (the state payload carries only the prefix and the number of parts)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from testrelay.aws.results_store import open_report, put_part, read_parts
from testrelay.errors import InvalidPayload, RunNotFinished
from testrelay.junit import JunitCase, parse_report
from testrelay.models.execution import STATUS_SEVERITY, CaseResult, RunCounts, RunRef, duration_of, short_message
from testrelay.models.job import Job
from testrelay.observability import logger
from testrelay.relay import services
from testrelay.relay.shards import shard_cases
from testrelay.settings import get_settings
from testrelay.sync.status_map import relay_status


def _case_results(case: Mapping[str, Any]) -> Iterator[CaseResult]:
    """One CaseResult per test case, or per iteration of a data-driven case, on each machine."""
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
        yield CaseResult(
            **base,
            iteration=None if entry is case else index,
            result=result,
            status=relay_status(result),
            case_result_id=entry.get("testCaseResultId") or case.get("testCaseResultId"),
            # Read where the answer carries them (a run's own status has both); never required.
            message=short_message(entry.get("message") or case.get("message")),
            duration_ms=duration_of(entry.get("duration") if entry is not case else case.get("duration")),
        )


class _PartWriter:
    """Buffers results and writes a part each time `size` are buffered."""

    def __init__(self, bucket: str | None, prefix: str, size: int) -> None:
        self.bucket, self.prefix, self.size = bucket, prefix, size
        self.buffer: list[dict[str, Any]] = []
        self.parts = 0

    def add(self, item: dict[str, Any]) -> None:
        self.buffer.append(item)
        if len(self.buffer) >= self.size:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        if not self.bucket:
            raise InvalidPayload("results too large to travel inline and RESULTS_BUCKET is not set")
        put_part(self.bucket, self.prefix, self.parts, self.buffer)
        self.parts += 1
        self.buffer = []


def _testsigma_cases(run: RunRef) -> Iterator[list[CaseResult]]:
    """The run's results, grouped by test case (its iterations together)."""
    settings = get_settings()
    for answer in services.testsigma().case_result_pages(run.run_id, settings.testsigma_results_page_size):
        status = str(answer.get("status") or "")
        if status and status != "STATUS_COMPLETED":
            raise RunNotFinished(f"run {run.run_id} is {status}")
        try:
            for case in answer.get("testCases") or []:
                yield list(_case_results(case))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidPayload(f"Testsigma case results of run {run.run_id} are malformed: {exc!r}") from exc


def _report_cases(job: Job) -> Iterator[list[JunitCase]]:
    """The JUnit report's test cases, streamed from S3 (a sharded CI run's: its shards merged)."""
    if job.run_key:
        yield from shard_cases(job)
        return
    if not job.report_key:
        raise InvalidPayload(f"junit job {job.id} names no report")
    with open_report(get_settings().require("results_bucket"), job.report_key) as stream:
        for result in parse_report(stream, job.route.junit):
            yield [result]


def collect_results(job: Job, run: RunRef) -> dict[str, Any]:
    settings = get_settings()
    writer = _PartWriter(settings.results_bucket, f"results/{job.id}/{run.run_id}", settings.results_part_size)
    counts = RunCounts()
    count = 0
    for results in _report_cases(job) if job.kind == "junit" else _testsigma_cases(run):
        # A case counts once, with its worst iteration (as Testsigma's own run counts do).
        counts.add(min((r.status for r in results), key=STATUS_SEVERITY.index))
        for result in results:
            writer.add(result.stored())
        count += len(results)

    summary: dict[str, Any] = {"count": count, "counts": counts.model_dump()}
    if (
        writer.parts == 0
        and len(json.dumps(writer.buffer, separators=(",", ":"))) <= settings.inline_results_limit_bytes
    ):
        summary["items"] = writer.buffer
    else:
        writer.flush()
        summary.update(s3_prefix=writer.prefix, parts=writer.parts)
    services.ledger().update_job(job.id, state="collected", counts=counts.model_dump(), summary=counts.summary())
    logger.info("case results collected", job_id=job.id, run_id=run.run_id, count=count, **counts.model_dump())
    return summary


def iter_results(collected: Mapping[str, Any]) -> Iterator[CaseResult]:
    """The collected results, one S3 part in memory at a time."""
    if "s3_prefix" in collected:
        bucket = get_settings().require("results_bucket")
        raw: Iterator[Any] = read_parts(bucket, str(collected["s3_prefix"]), int(collected["parts"]))
    else:
        raw = iter(collected.get("items") or [])
    for item in raw:
        yield CaseResult.model_validate(item)
