"""Reporting to the CI the job came from, where that CI has a status API."""

from __future__ import annotations

from testrelay.models.job import Job
from testrelay.observability import logger
from testrelay.relay import services
from testrelay.vendors.github import CommitState


def post_ci_status(job: Job, state: CommitState, description: str, target_url: str | None) -> bool:
    """Post a commit status; False when the route or the CI has no status to post."""
    event = job.event
    if not job.route.report_to_ci:
        return False
    if event.provider != "github" or not event.commit_sha:
        logger.info(
            "no CI status API for this job; summary kept in the ledger",
            job_id=job.id,
            provider=event.provider,
            state=state,
            description=description,
            target_url=target_url,
        )
        return False
    services.github().create_commit_status(
        event.repository,
        event.commit_sha,
        state,
        description,
        context=f"testrelay/{job.route.name}",
        target_url=target_url,
    )
    return True
