"""What a job reports to the CI beyond the one-line commit status, as its route asks (`ci_feedback`):
a GitHub check run, a pull-request comment or merge-request note, a Bitbucket Code Insights report.

A passing fault (throttled, unavailable, an answer lost) fails the step so the state machine's Retry
repeats it, which is safe: every part finds and updates what an earlier attempt made (a lost answer is
raised as VendorUnavailable for that reason: the repeat reads back before it sends). A refusal or a
configuration fault (the App not installed, a missing key) is logged and kept in the ledger: the
results are written, and the job's end state still tells that truth.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from testrelay.aws.secrets import SecretsUnavailable
from testrelay.errors import (
    ConfigurationError,
    VendorError,
    VendorOutcomeUnknown,
    VendorThrottled,
    VendorUnavailable,
)
from testrelay.models.execution import RunCounts, RunRef
from testrelay.models.job import Job
from testrelay.observability import logger
from testrelay.relay import bitbucket_insights, github_checks, review_comments, services
from testrelay.relay.ci_digest import Digest, compare, digest, history_scope
from testrelay.relay.ci_summary import GITHUB_TEXT_LIMIT, SummaryInput, render, text
from testrelay.relay.collect import iter_results
from testrelay.vendors.gitlab import NOTE_LIMIT

_PASSING = (VendorThrottled, VendorUnavailable, SecretsUnavailable)
COMMENT_LIMIT = 65_536
"""GitHub's issue comment body."""


def _guarded(part: str, job: Job, action: Callable[[], Any], errors: dict[str, str]) -> Any:
    try:
        return action()
    except VendorOutcomeUnknown as exc:
        raise VendorUnavailable(exc.vendor, f"{exc}; the report step reads back and resumes", exc.status) from exc
    except _PASSING:
        raise
    except (VendorError, ConfigurationError) as exc:
        # The message names the call and the vendor's own words, never a credential.
        logger.warning("CI feedback not given", job_id=job.id, part=part, error=str(exc))
        errors[part] = str(exc)[:500]
        return None


def wanted(job: Job) -> bool:
    return github_checks.wanted(job) or review_comments.wanted(job) or bitbucket_insights.wanted(job)


def report_started(job: Job, run: RunRef) -> None:
    """The check run goes in progress. Never fails the trigger: the finished report puts it anyway."""
    if not github_checks.wanted(job):
        return
    try:
        github_checks.started(job, run)
    except (VendorError, ConfigurationError, SecretsUnavailable) as exc:
        logger.warning("GitHub check run not started", job_id=job.id, error=str(exc))


def _digest(job: Job, counts: RunCounts, collected: Mapping[str, Any]) -> Digest:
    found = digest(counts, iter_results(collected))
    scope = history_scope(job)
    ledger = services.ledger()
    ledger.put_history(scope, **compare(found, job.id, ledger.get_history(scope)))
    return found


def report_finished(
    job: Job,
    run: RunRef,
    collected: Mapping[str, Any],
    outcomes: Sequence[Mapping[str, Any]],
    counts: RunCounts,
    conclusion: str,
    headline: str,
) -> dict[str, Any]:
    """Everything the route asks for; what was done (and what was refused) for the ledger."""
    if not wanted(job):
        return {}
    found = _digest(job, counts, collected)
    summary = SummaryInput(
        route=job.route.name,
        counts=counts,
        headline=headline,
        conclusion=conclusion,
        run_url=run.url or None,
        run_label="Testsigma run" if run.source == "testsigma" else "CI run of the report",
        outcomes=outcomes,
        found=found,
        ci_run_url=job.event.run_url,
        job_id=job.id,
    )
    done: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if github_checks.wanted(job):
        done["check_run_id"] = _guarded(
            "check_run",
            job,
            lambda: github_checks.finished(
                job, run.url, conclusion, headline, render(summary, GITHUB_TEXT_LIMIT), found.failed
            ),
            errors,
        )
    if review_comments.wanted(job):
        limit = COMMENT_LIMIT if job.event.provider == "github" else NOTE_LIMIT
        tag = review_comments.marker(job)
        done["comment"] = _guarded(
            "comment", job, lambda: review_comments.post(job, render(summary, limit, marker=tag)), errors
        )
    if bitbucket_insights.wanted(job):
        done["bitbucket_annotations"] = _guarded(
            "bitbucket_report",
            job,
            lambda: bitbucket_insights.publish(
                job, counts, conclusion, headline, run.url, found.failed, found.failed_total
            ),
            errors,
        )
    if errors:
        done["errors"] = errors
    return done


def report_failed(job: Job, run_url: str | None, reason: str) -> None:
    """A job that failed completes its check run as failed with the reason, never leaving it in progress."""
    if not github_checks.wanted(job):
        return
    summary = f"testrelay could not finish this job: {text(reason, 2000)}"
    try:
        github_checks.finished(job, run_url, "error", "testrelay: job failed", summary, [])
    except (VendorError, ConfigurationError, SecretsUnavailable) as exc:
        logger.error("GitHub check run not completed", job_id=job.id, error=str(exc))
