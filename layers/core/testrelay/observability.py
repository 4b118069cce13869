"""The one place where Logger, Tracer and Metrics are created, so every module shares them.

Correlation: every handler puts the job it works for (`job_id`, `route`, `delivery`) on the shared
logger for the whole invocation (`lambda_entry`, or `job_keys` around one SQS record), so every line
it logs carries them, the vendor client's retries and the rate budget's warnings included, and the
trace carries `job_id` and `route` as annotations.

Cold start: the X-Ray SDK (aws_xray_sdk, ~150 ms of imports, and a patch of botocore and requests) is
imported only when tracing is on, when the first invocation starts; a function with
POWERTOOLS_TRACE_DISABLED=true (the webhook) never imports it.
"""

import functools
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

SERVICE = "testrelay"
NAMESPACE = "TestRelay"

SDK_BODY_LOGGERS = (
    "botocore.parsers",  # "Response body: ..." — Secrets Manager's SecretString among them
    "botocore.endpoint",  # "Making request ... with params: {... 'body': ...}" — PutSecretValue's secret
    "botocore.auth",  # canonical requests and signing strings: headers such as X-Amz-Security-Token
    "botocore.awsrequest",
    "boto3.resources.action",  # "Calling dynamodb:update_item with {...}": ledger items verbatim
)
"""AWS SDK loggers whose DEBUG lines carry request or response bodies (secrets included). They stay at
INFO whatever level the relay or a caller (`boto3.set_stream_logger`, a root DEBUG) asks for."""

JOB_KEYS = ("job_id", "route", "delivery")
"""The keys that tie a log line to a job; see the README's Logs Insights queries."""


class _AboveDebug(logging.Filter):
    """Drops DEBUG records of the SDK body loggers even where a caller lowered their level again."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


def quiet_sdk_body_logs() -> None:
    """Keep botocore's DEBUG bodies out of every log (idempotent)."""
    for name in SDK_BODY_LOGGERS:
        sdk_logger = logging.getLogger(name)
        sdk_logger.setLevel(max(sdk_logger.level, logging.INFO))
        if not any(isinstance(existing, _AboveDebug) for existing in sdk_logger.filters):
            sdk_logger.addFilter(_AboveDebug())


quiet_sdk_body_logs()

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)


def tracing_on() -> bool:
    """Powertools' own rule: off when POWERTOOLS_TRACE_DISABLED says so, or outside Lambda."""
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in ("1", "true", "yes", "on")
    return not disabled and bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME"))


@functools.cache
def tracer() -> Any:
    """The process's Tracer, created (and the X-Ray SDK imported) on first use only."""
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


def job_keys_of(job: Any) -> dict[str, str]:
    """`job_id`, `route`, `delivery` from a serialised job (a task's `job`, a queued message's body)."""
    if not isinstance(job, Mapping):
        return {}
    keys: dict[str, str] = {}
    if isinstance(job.get("id"), str):
        keys["job_id"] = job["id"]
    route = job.get("route")
    if isinstance(route, Mapping) and isinstance(route.get("name"), str):
        keys["route"] = route["name"]
    event = job.get("event")
    if isinstance(event, Mapping) and isinstance(event.get("delivery_key"), str):
        keys["delivery"] = event["delivery_key"]
    if isinstance(job.get("retry_of"), str):  # a retry request names the job it runs again
        keys["job_id"] = job["retry_of"]
    return keys


def correlate(**keys: str | None) -> None:
    """Put job keys on every later log line of this invocation (and on its trace)."""
    present = {name: value for name, value in keys.items() if value}
    if not present:
        return
    # Per thread: the local runtime runs several invocations in one process (Lambda runs one).
    logger.thread_safe_append_keys(**present)
    if tracing_on():
        for name in ("job_id", "route"):
            if name in present:
                tracer().put_annotation(key=name, value=present[name])


@contextmanager
def job_keys(keys: Mapping[str, str]) -> Iterator[None]:
    """The keys of one job for a block (one SQS record of a batch), removed after it."""
    correlate(**keys)
    try:
        yield
    finally:
        logger.thread_safe_remove_keys(list(JOB_KEYS))


def lambda_entry(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Every handler gets the same logging context, job correlation, tracing and metrics flush.

    The chain is built at the first invocation, so whether tracing is on is read then, not at import."""

    def correlated(event: Any, context: Any) -> Any:
        # A warm environment's previous job must not name this invocation's lines.
        logger.thread_safe_remove_keys(list(JOB_KEYS))
        if isinstance(event, Mapping):
            correlate(**job_keys_of(event.get("job")))
        return handler(event, context)

    built: list[Callable[[Any, Any], Any]] = []

    @functools.wraps(handler)
    def entry(event: Any, context: Any) -> Any:
        if not built:
            chain = metrics.log_metrics(correlated)
            if tracing_on():
                chain = tracer().capture_lambda_handler(chain)
            built.append(logger.inject_lambda_context(chain, clear_state=True))
        return built[0](event, context)

    return entry


def emit(
    name: str,
    value: float,
    dimensions: Mapping[str, str],
    *,
    unit: MetricUnit = MetricUnit.Count,
    rollup: bool = False,
    job_id: str | None = None,
) -> None:
    """One EMF metric with its own dimensions (route, target, kind, outcome, vendor: all bounded by the
    routes file or the code, never a job id, which goes in as metadata: a key of the log record).
    `rollup` adds the set with `service` alone, the series an alarm watches."""
    emf = EphemeralMetrics(service=SERVICE, namespace=NAMESPACE)
    for dimension, dimension_value in dimensions.items():
        emf.add_dimension(name=dimension, value=dimension_value)
    if rollup:
        emf.add_dimensions(service=SERVICE)
    emf.add_metric(name=name, unit=unit, value=value)
    if job_id:
        emf.add_metadata(key="job_id", value=job_id)
    emf.flush_metrics()
