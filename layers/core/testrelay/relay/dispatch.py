"""A job from the queue becomes one state machine execution named after the job."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from testrelay.aws.executions import start_once
from testrelay.models.job import Job
from testrelay.observability import logger, metrics
from testrelay.relay import services
from testrelay.settings import get_settings


def dispatch(job: Job) -> bool:
    """Start the job's execution; False when it had already started (a redelivered message)."""
    # Recorded before the start, so the execution's own steps always find the job's record.
    services.ledger().record_job(job)
    started = start_once(get_settings().require("state_machine_arn"), job.id, {"job": job.model_dump(mode="json")})
    if started:
        metrics.add_metric(name="ExecutionsStarted", unit=MetricUnit.Count, value=1)
    logger.info("job dispatched", job_id=job.id, route=job.route.name, started=started)
    return started
