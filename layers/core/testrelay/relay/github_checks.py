"""One GitHub check run per route and job: `in_progress` with the Testsigma run's link when the run
starts, completed with the conclusion, the summary and one annotation per failed case.

The job's check run is found again by the id the ledger keeps, else by its `external_id` (the job id)
among the commit's check runs of that name, so a retried or repeated step updates it and never creates
a second. GitHub appends the annotations of every update and takes 50 per request: they go 50 at a time
after the summary, and a repeat resumes after the `annotations_count` GitHub already holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from testrelay.errors import VendorAuthFailed, VendorOutcomeUnknown
from testrelay.models.execution import CaseResult, CaseStatus, RunRef
from testrelay.models.job import Job
from testrelay.observability import logger
from testrelay.relay import services
from testrelay.vendors.github import GitHubClient

T = TypeVar("T")
ANNOTATIONS_PER_REQUEST = 50
TITLE_LIMIT = 255
MESSAGE_LIMIT = 64_000
"""An annotation's message and raw_details take 64 KB."""
ANNOTATION_PATH = ".github"
"""Testsigma cases have no file in the repository: annotations sit on the repository's .github path,
shown in the check run's page (as test reporters do for results without a file)."""
CONCLUSIONS = {"success": "success", "failure": "failure", "error": "failure"}


def wanted(job: Job) -> bool:
    event = job.event
    return (
        job.route.report_to_ci
        and job.route.ci_feedback.github == "check_run"
        and event.provider == "github"
        and bool(event.commit_sha)
    )


def check_name(job: Job) -> str:
    return f"testrelay/{job.route.name}"


def _now() -> str:
    return datetime.fromtimestamp(time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _http_url(url: str | None) -> str | None:
    return url if url and url.startswith(("https://", "http://")) else None


def as_installation(job: Job, action: Callable[[GitHubClient], T]) -> T:
    """`action` with the installation's client; a token GitHub refuses (revoked, expired early, the App's
    permissions changed) is dropped and the action tried once more with a fresh one."""
    configured = job.route.ci_feedback.github_installation_id
    installation, client = services.github_installation(job.event.repository, configured)
    try:
        return action(client)
    except VendorAuthFailed:
        services.github_app().forget(installation)
        return action(services.github_installation(job.event.repository, configured)[1])


class JobCheckRun:
    def __init__(self, job: Job, client: GitHubClient) -> None:
        self.job = job
        self.repository = job.event.repository
        self.client = client

    def _listed(self) -> dict[str, Any] | None:
        sha = str(self.job.event.commit_sha)
        for run in self.client.check_runs_for_ref(self.repository, sha, check_name(self.job)):
            if run.get("external_id") == self.job.id:
                return run
        return None

    def _known_id(self) -> int | None:
        stored = (services.ledger().get_job(self.job.id) or {}).get("check_run_id")
        if stored:
            return int(stored)
        listed = self._listed()
        return int(listed["id"]) if listed else None

    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Update the job's check run with `body` (no annotations), creating it the first time."""
        known = self._known_id()
        if known is not None:
            return self.client.update_check_run(self.repository, known, body, repeatable=True)
        create = {"name": check_name(self.job), "head_sha": self.job.event.commit_sha, "external_id": self.job.id}
        try:
            answer = self.client.create_check_run(self.repository, {**create, **body})
        except VendorOutcomeUnknown:
            # The answer was lost: the run may exist. Look before anything is sent again.
            listed = self._listed()
            if listed is None:
                raise
            answer = self.client.update_check_run(self.repository, int(listed["id"]), body, repeatable=True)
        services.ledger().update_job(self.job.id, check_run_id=int(answer["id"]))
        return answer

    def annotate(self, answer: dict[str, Any], output: dict[str, Any], annotations: Sequence[dict[str, Any]]) -> int:
        """Append the annotations GitHub does not hold yet, 50 per update; the number it holds after."""
        held = int((answer.get("output") or {}).get("annotations_count") or 0)
        check_run_id = int(answer["id"])
        for batch in _chunks(annotations[held:], ANNOTATIONS_PER_REQUEST):
            answer = self.client.update_check_run(
                self.repository, check_run_id, {"output": {**output, "annotations": batch}}, repeatable=False
            )
            held = int((answer.get("output") or {}).get("annotations_count") or held + len(batch))
        return held


def _chunks(items: Sequence[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def annotation(result: CaseResult) -> dict[str, Any]:
    name = result.name if result.iteration is None else f"{result.name} [iteration {result.iteration}]"
    where = ", ".join(part for part in (result.suite and f"suite {result.suite}", result.machine) if part)
    title = f"{name} ({where})" if where else name
    message = result.message or result.result
    body: dict[str, Any] = {
        "path": ANNOTATION_PATH,
        "start_line": 1,
        "end_line": 1,
        "annotation_level": "failure" if result.status == CaseStatus.FAILED else "warning",
        "message": message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…",
        "raw_details": f"result: {result.result}",
    }
    if title.strip():
        body["title"] = title if len(title) <= TITLE_LIMIT else title[: TITLE_LIMIT - 1] + "…"
    return body


def started(job: Job, run: RunRef) -> None:
    """The check run goes `in_progress` with the Testsigma run's link."""
    details = _http_url(run.url)
    body: dict[str, Any] = {
        "status": "in_progress",
        "started_at": _now(),
        "output": {
            "title": "Testsigma run started" if run.source == "testsigma" else "Report received",
            "summary": f"testrelay follows {run.described}; the results follow when it finishes.",
        },
    }
    if details:
        body["details_url"] = details
    answer = as_installation(job, lambda client: JobCheckRun(job, client).put(body))
    logger.info("GitHub check run in progress", job_id=job.id, check_run_id=answer.get("id"))


def finished(
    job: Job, run_url: str | None, conclusion: str, title: str, summary: str, failed: Sequence[CaseResult]
) -> int:
    """Completes the check run with `summary` and annotates every failed case; its id."""
    output = {"title": title[:TITLE_LIMIT], "summary": summary}
    body: dict[str, Any] = {
        "status": "completed",
        "conclusion": CONCLUSIONS.get(conclusion, "failure"),
        "completed_at": _now(),
        "output": output,
    }
    details = _http_url(run_url)
    if details:
        body["details_url"] = details
    annotations = [annotation(result) for result in failed]

    def complete(client: GitHubClient) -> tuple[dict[str, Any], int]:
        check = JobCheckRun(job, client)
        answer = check.put(body)
        return answer, check.annotate(answer, output, annotations)

    # Run again after a refused token, `put` finds the check run and `annotate` resumes after what it holds.
    answer, held = as_installation(job, complete)
    logger.info("GitHub check run completed", job_id=job.id, check_run_id=answer.get("id"), annotations=held)
    return int(answer["id"])


def with_comment_client(job: Job, action: Callable[[GitHubClient], T]) -> T:
    """Pull-request comments need only a token; a route on check runs writes them as its App."""
    if job.route.ci_feedback.github == "check_run":
        return as_installation(job, action)
    return action(services.github())
