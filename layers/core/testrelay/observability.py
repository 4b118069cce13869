"""The one place where Logger, Tracer and Metrics are created, so every module shares them."""

import logging
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = "testrelay"

SDK_BODY_LOGGERS = (
    "botocore.parsers",  # "Response body: ..." — Secrets Manager's SecretString among them
    "botocore.endpoint",  # "Making request ... with params: {... 'body': ...}" — PutSecretValue's secret
    "botocore.auth",  # canonical requests and signing strings: headers such as X-Amz-Security-Token
    "botocore.awsrequest",
    "boto3.resources.action",  # "Calling dynamodb:update_item with {...}": ledger items verbatim
)
"""AWS SDK loggers whose DEBUG lines carry request or response bodies (secrets included). They stay at
INFO whatever level the relay or a caller (`boto3.set_stream_logger`, a root DEBUG) asks for."""


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
tracer = Tracer(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace="TestRelay")


def lambda_entry(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """Every handler gets the same logging context, tracing and metrics flush."""
    with_metrics = metrics.log_metrics(handler)
    traced = tracer.capture_lambda_handler(with_metrics)
    return logger.inject_lambda_context(traced, clear_state=True)
