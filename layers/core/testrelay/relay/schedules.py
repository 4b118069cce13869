"""A schedule firing becomes one trigger job; its id derives from the schedule and the scheduled
time, so a duplicate firing (EventBridge delivers at least once) starts nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime

from aws_lambda_powertools.metrics import MetricUnit

from testrelay.aws.queue import send_jobs
from testrelay.errors import ConfigurationError, InvalidPayload
from testrelay.models.ci_event import CiEvent
from testrelay.models.job import Job
from testrelay.observability import correlate, logger, metrics
from testrelay.routing import load_routes
from testrelay.settings import get_settings


def scheduled_instant(value: str | None, now: datetime | None = None) -> str:
    """The firing's time as ISO 8601 UTC to the minute; a manual firing without one takes the current minute."""
    if value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise InvalidPayload(f"scheduled_time {value!r} is not an ISO 8601 time") from exc
    else:
        moment = now or datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def fire(name: str, scheduled_time: str | None) -> Job:
    config = load_routes(get_settings().require("routes_file"))
    try:
        schedule = config.schedule(name)
    except KeyError:
        raise ConfigurationError(f"no schedule named {name!r} in the routes file") from None
    instant = scheduled_instant(scheduled_time)
    event = CiEvent(
        provider="schedule",
        event="schedule",
        delivery_key=f"{schedule.name}@{instant}",
        repository=f"schedule/{schedule.name}",
        pipeline_id=instant,
        pipeline_name=schedule.name,
    )
    job = Job.for_event(event, config.route(schedule.route).action())
    correlate(job_id=job.id, route=job.route.name, delivery=event.delivery_key)
    send_jobs(get_settings().require("jobs_queue_url"), [job])
    logger.info("schedule fired", schedule=schedule.name, scheduled_time=instant, job_id=job.id)
    metrics.add_metric(name="SchedulesFired", unit=MetricUnit.Count, value=1)
    return job
