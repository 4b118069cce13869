"""Reporting to the CI the job came from: the one place that knows which CI has a status API.

GitHub and GitLab get a commit status, Bitbucket a build status (named after the route, so a repeat
replaces it). CircleCI, Jenkins, Azure DevOps and the generic hook have no status API a webhook
receiver can use: the summary and the run link go to the relay's log and the job's ledger record.
"""

from __future__ import annotations

from collections.abc import Mapping

from testrelay.models.job import Job
from testrelay.observability import logger
from testrelay.relay import github_checks, services
from testrelay.vendors.bitbucket import BitbucketState
from testrelay.vendors.github import CommitState
from testrelay.vendors.gitlab import GitLabState

# `failure`: the tests failed, every result written; `error`: results could not be written (or the job
# failed). GitHub has both states; GitLab (pending, running, success, failed, canceled) and Bitbucket
# (SUCCESSFUL, FAILED, INPROGRESS, STOPPED) have one failed state, so there the description, which
# starts with "results not written" for an error, tells the two apart.
GITLAB_STATES: Mapping[CommitState, GitLabState] = {
    "success": "success",
    "failure": "failed",
    "error": "failed",
    "pending": "running",
}
BITBUCKET_STATES: Mapping[CommitState, BitbucketState] = {
    "success": "SUCCESSFUL",
    "failure": "FAILED",
    "error": "FAILED",
    "pending": "INPROGRESS",
}
STATUS_PROVIDERS = frozenset({"github", "gitlab", "bitbucket"})


def post_ci_status(job: Job, state: CommitState, description: str, target_url: str | None) -> bool:
    """Post a commit status; False when the route or the CI has no status to post."""
    event = job.event
    if not job.route.report_to_ci or github_checks.wanted(job):
        # A route on GitHub check runs reports through its check run instead (testrelay.relay.ci_feedback).
        return False
    link = target_url or event.run_url
    if event.provider not in STATUS_PROVIDERS or not event.commit_sha or not link:
        logger.info(
            "no CI status API for this job; summary kept in the ledger",
            job_id=job.id,
            provider=event.provider,
            repository=event.repository,
            commit_sha=event.commit_sha,
            ci_run_url=event.run_url,
            state=state,
            description=description,
            target_url=target_url,
        )
        return False
    name = f"testrelay/{job.route.name}"
    if event.provider == "github":
        services.github().create_commit_status(
            event.repository, event.commit_sha, state, description, context=name, target_url=target_url
        )
    elif event.provider == "gitlab":
        services.gitlab().create_commit_status(
            event.repository,
            event.commit_sha,
            GITLAB_STATES[state],
            name=name,
            description=description,
            target_url=target_url,
            ref=event.branch,
            pipeline_id=event.pipeline_id,
        )
    else:
        # Bitbucket requires a link: the Testsigma run, or before there is one, the CI's own run.
        services.bitbucket().create_build_status(
            event.repository,
            event.commit_sha,
            BITBUCKET_STATES[state],
            key=f"testrelay-{job.route.name}",
            url=link,
            name=name,
            description=description,
            refname=event.branch,
        )
    return True
