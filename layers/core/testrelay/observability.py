"""The one place where Logger, Tracer and Metrics are created, so every module shares them."""

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "testrelay"

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace="TestRelay")


def lambda_entry(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Every handler gets the same logging context, tracing and metrics flush."""
    with_metrics = metrics.log_metrics(handler)
    traced = tracer.capture_lambda_handler(with_metrics)
    return logger.inject_lambda_context(traced, clear_state=True)
