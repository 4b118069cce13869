"""One summary comment per route and pull request (GitHub) or merge request (GitLab), edited in place on
every new run: found again by a hidden marker in its first line, the whole list read page by page.

A body equal to the one the comment holds is not sent again (a repeated step changes nothing). A
create whose answer was lost is looked up before anything is sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from testrelay.errors import VendorOutcomeUnknown
from testrelay.models.job import Job
from testrelay.observability import logger
from testrelay.relay import services
from testrelay.relay.github_checks import with_comment_client
from testrelay.vendors.github import GitHubClient


def marker(job: Job) -> str:
    # Route names are [a-z0-9_-]: nothing in one can end the HTML comment.
    return f"<!-- testrelay:route={job.route.name} -->"


def wanted(job: Job) -> bool:
    event = job.event
    return (
        job.route.report_to_ci
        and job.route.ci_feedback.pull_request_comment
        and event.provider in ("github", "gitlab")
        and bool(event.pull_request)
    )


def _ours(comments: Sequence[dict[str, Any]], tag: str) -> dict[str, Any] | None:
    for comment in comments:
        body = comment.get("body")
        if isinstance(body, str) and body.startswith(tag) and not comment.get("system"):
            return comment
    return None


def _upsert(
    tag: str,
    body: str,
    listed: Callable[[], list[dict[str, Any]]],
    create: Callable[[], dict[str, Any]],
    update: Callable[[int], dict[str, Any]],
) -> tuple[str, int]:
    found = _ours(listed(), tag)
    if found is None:
        try:
            return "created", int(create()["id"])
        except VendorOutcomeUnknown:
            found = _ours(listed(), tag)
            if found is None:
                raise
    if found.get("body") == body:
        return "unchanged", int(found["id"])
    return "updated", int(update(int(found["id"]))["id"])


def post(job: Job, body: str) -> str:
    """Create or edit the job's comment; says which it did."""
    event = job.event
    number = str(event.pull_request)
    tag = marker(job)
    if event.provider == "github":

        def on_github(github: GitHubClient) -> tuple[str, int]:
            return _upsert(
                tag,
                body,
                lambda: github.issue_comments(event.repository, number),
                lambda: github.create_issue_comment(event.repository, number, body),
                lambda found: github.update_issue_comment(event.repository, found, body),
            )

        done, comment_id = with_comment_client(job, on_github)
    else:
        gitlab = services.gitlab()
        done, comment_id = _upsert(
            tag,
            body,
            lambda: gitlab.merge_request_notes(event.repository, number),
            lambda: gitlab.create_merge_request_note(event.repository, number, body),
            lambda found: gitlab.update_merge_request_note(event.repository, number, found, body),
        )
    logger.info(
        "review comment " + done, job_id=job.id, provider=event.provider, pull_request=number, comment_id=comment_id
    )
    return done
