"""Rendering the routes file's {placeholder} templates for a job."""

from __future__ import annotations

import time

from testrelay.models.job import Job


def render(template: str, job: Job, run_id: int | None = None) -> str:
    event = job.event
    values = {
        "provider": event.provider,
        "event": event.event,
        "repository": event.repository,
        "branch": event.branch or "",
        "sha": event.commit_sha or "",
        "short_sha": event.short_sha,
        "pipeline_id": event.pipeline_id or "",
        "pipeline_name": event.pipeline_name,
        "run_number": "" if event.run_number is None else str(event.run_number),
        "route": job.route.name,
        "plan_id": str(job.route.testsigma.test_plan_id),
        # 0 is the run of a JUnit report: there is no Testsigma run to name.
        "run_id": str(run_id) if run_id else "",
        "date": time.strftime("%Y-%m-%d", time.gmtime(job.created_at)),
    }
    # The routes model rejects any placeholder outside this vocabulary, so format_map cannot reach attributes.
    return " ".join(template.format_map(values).split())
