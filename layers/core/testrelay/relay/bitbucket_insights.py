"""A Bitbucket Code Insights report per route and commit (`testrelay-<route>`), beside the build status:
the counts as data fields, the Testsigma run as its link, one annotation per failed case.

Each report is put afresh: the old one is deleted first (and with it, as documented, its annotations:
those of an earlier run of the same commit, which a replaced report may keep, and those a crashed
attempt sent, which a bulk call may refuse as known ids), then the annotations go 100 per request up to
the 1,000 a report holds, each with a stable `external_id` (report, position).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from testrelay.models.execution import CaseResult, CaseStatus, RunCounts
from testrelay.models.job import Job
from testrelay.observability import logger
from testrelay.relay import services
from testrelay.vendors.bitbucket import (
    ANNOTATION_DETAILS_LIMIT,
    ANNOTATION_SUMMARY_LIMIT,
    ANNOTATIONS_PER_CALL,
    ANNOTATIONS_PER_REPORT,
    REPORT_DETAILS_LIMIT,
)

TITLE_LIMIT = 450


def wanted(job: Job) -> bool:
    event = job.event
    return (
        job.route.report_to_ci
        and job.route.ci_feedback.bitbucket_report
        and event.provider == "bitbucket"
        and bool(event.commit_sha)
    )


def report_id(job: Job) -> str:
    return f"testrelay-{job.route.name}"


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _report(
    job: Job, counts: RunCounts, conclusion: str, headline: str, run_url: str | None, failed_total: int
) -> dict[str, Any]:
    details = headline
    if failed_total > ANNOTATIONS_PER_REPORT:
        details += f" ({ANNOTATIONS_PER_REPORT} of {failed_total} failed cases annotated: a report holds no more)"
    data: list[dict[str, Any]] = [
        {"title": "Total", "type": "NUMBER", "value": counts.total},
        {"title": "Passed", "type": "NUMBER", "value": counts.passed},
        {"title": "Failed", "type": "NUMBER", "value": counts.failed},
        {"title": "Blocked", "type": "NUMBER", "value": counts.blocked},
        {"title": "Skipped", "type": "NUMBER", "value": counts.skipped},
        {"title": "Not run", "type": "NUMBER", "value": counts.untested},
    ]
    body: dict[str, Any] = {
        "title": _cut(f"testrelay · {job.route.name}", TITLE_LIMIT),
        "details": _cut(details, REPORT_DETAILS_LIMIT),
        "report_type": "TEST",
        "reporter": "testrelay",
        "result": "PASSED" if conclusion == "success" else "FAILED",
        "data": data,
    }
    if run_url and run_url.startswith(("https://", "http://")):
        body["link"] = run_url
        data.append({"title": "Testsigma run", "type": "LINK", "value": {"text": "open", "href": run_url}})
    return body


def annotation(job: Job, index: int, result: CaseResult, run_url: str | None) -> dict[str, Any]:
    name = result.name if result.iteration is None else f"{result.name} [iteration {result.iteration}]"
    label = f"{name} on {result.machine}" if result.machine else name
    message = result.message or result.result
    body: dict[str, Any] = {
        "external_id": f"{report_id(job)}-{index:04d}",
        "annotation_type": "BUG",
        "summary": _cut(f"{label}: {message}", ANNOTATION_SUMMARY_LIMIT),
        "details": _cut(message, ANNOTATION_DETAILS_LIMIT),
        "result": "FAILED",
        "severity": "HIGH" if result.status == CaseStatus.FAILED else "MEDIUM",
    }
    if label.strip():
        body["title"] = _cut(label, TITLE_LIMIT)
    if run_url and run_url.startswith(("https://", "http://")):
        body["link"] = run_url
    return body


def publish(
    job: Job,
    counts: RunCounts,
    conclusion: str,
    headline: str,
    run_url: str | None,
    failed: Sequence[CaseResult],
    failed_total: int,
) -> int:
    """Puts the report and its annotations; the number of annotations sent."""
    client = services.bitbucket()
    repository, sha, key = job.event.repository, str(job.event.commit_sha), report_id(job)
    client.delete_report(repository, sha, key)
    client.put_report(repository, sha, key, _report(job, counts, conclusion, headline, run_url, failed_total))
    annotations = [annotation(job, i, r, run_url) for i, r in enumerate(failed[:ANNOTATIONS_PER_REPORT])]
    for start in range(0, len(annotations), ANNOTATIONS_PER_CALL):
        client.add_annotations(repository, sha, key, annotations[start : start + ANNOTATIONS_PER_CALL])
    logger.info("Bitbucket Code Insights report put", job_id=job.id, report=key, annotations=len(annotations))
    return len(annotations)
