"""What the CI feedback says of a finished job, gathered in one pass over its results: the failed cases
(for annotations), the slowest ones, and which failures are new against the route's previous report."""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from testrelay.models.execution import CaseResult, CaseStatus, RunCounts
from testrelay.models.job import Job

MAX_FAILED = 1000
"""Failed cases kept for annotations: Bitbucket's cap per report; GitHub gets as many, 50 per update."""
SLOWEST = 5
HISTORY_LIMIT = 2000
"""Failing cases remembered per route and branch (hashed); a longer list is marked incomplete."""
_FAILING = (CaseStatus.FAILED, CaseStatus.BLOCKED)


def case_key(result: CaseResult) -> str:
    """A short stable key of a case for the history: its name, iteration and machine, hashed."""
    text = f"{result.suite or ''}\0{result.name}\0{result.iteration or ''}\0{result.machine or ''}"
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


@dataclass
class Digest:
    counts: RunCounts
    failed: list[CaseResult] = field(default_factory=list)
    """Failed and blocked results in the order read, at most MAX_FAILED."""
    failed_total: int = 0
    slowest: list[CaseResult] = field(default_factory=list)
    failing_keys: list[str] = field(default_factory=list)
    failing_complete: bool = True
    newly_failing: list[CaseResult] | None = None
    """None: no earlier report of this route and branch (or pull request) to compare with."""
    compared_with: str | None = None
    """The earlier job the comparison used."""


def digest(counts: RunCounts, results: Iterable[CaseResult]) -> Digest:
    found = Digest(counts=counts)
    timed: list[tuple[int, int, CaseResult]] = []
    for index, result in enumerate(results):
        if result.status in _FAILING:
            found.failed_total += 1
            if len(found.failed) < MAX_FAILED:
                found.failed.append(result)
            if len(found.failing_keys) < HISTORY_LIMIT:
                found.failing_keys.append(case_key(result))
            else:
                found.failing_complete = False
        if result.duration_ms is not None:
            entry = (result.duration_ms, -index, result)
            if len(timed) < SLOWEST:
                heapq.heappush(timed, entry)
            else:
                heapq.heappushpop(timed, entry)
    found.slowest = [entry[2] for entry in sorted(timed, key=lambda e: (-e[0], -e[1]))]
    return found


def history_scope(job: Job) -> str:
    """Which earlier reports a job compares with: the same route, repository and pull request (or branch)."""
    event = job.event
    where = f"pr:{event.pull_request}" if event.pull_request else f"branch:{event.branch or event.tag or ''}"
    text = f"{job.route.name}\0{event.provider}\0{event.repository}\0{where}"
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


def compare(found: Digest, job_id: str, history: Mapping[str, Any] | None) -> dict[str, Any]:
    """Sets the newly failing cases against the history item, and returns the item to store.

    A repeat of the same job (a retry, a re-run report step) compares with what that job compared
    with before, never with its own earlier report."""
    if history and history.get("job_id") == job_id:
        baseline, baseline_job, complete = (
            history.get("previous_failing"),
            history.get("previous_job_id"),
            bool(history.get("previous_complete", True)),
        )
    elif history:
        baseline, baseline_job, complete = (
            history.get("failing"),
            history.get("job_id"),
            bool(history.get("complete", True)),
        )
    else:
        baseline, baseline_job, complete = None, None, True
    if isinstance(baseline, Sequence) and complete and found.failing_complete:
        known = set(map(str, baseline))
        found.newly_failing = [r for r in found.failed if case_key(r) not in known]
        found.compared_with = str(baseline_job) if baseline_job else None
    return {
        "job_id": job_id,
        "failing": found.failing_keys,
        "complete": found.failing_complete,
        "previous_job_id": baseline_job,
        "previous_failing": list(baseline) if isinstance(baseline, Sequence) else None,
        "previous_complete": complete,
    }
