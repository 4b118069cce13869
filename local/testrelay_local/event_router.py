"""Plays EventBridge's rule targets for the template's functions: every `EventBridgeRule` event of a
function becomes a real rule in moto's EventBridge (its bus, its pattern), whose target is a tap
queue; the router takes what moto delivered there and invokes the function as Lambda invokes an
asynchronous target: an invocation that raises is retried `MaximumRetryAttempts` times, then the
event goes to the function's DeadLetterQueue with Lambda's `ErrorCode` / `ErrorMessage` attributes.

Matching is moto's own (event patterns, buses), so a pattern the template gets wrong delivers
nothing here either.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from testrelay_local.lambda_router import LocalLambdaContext
from testrelay_local.template_stack import ProvisionedFunction

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Tap:
    rule: str
    queue_url: str
    function: ProvisionedFunction
    handler: Callable[[Any, Any], Any]


class EventRouter:
    def __init__(
        self,
        events: Any,
        sqs: Any,
        functions: Mapping[str, ProvisionedFunction],
        handlers: Mapping[str, Callable[[Any, Any], Any]],
        account_id: str,
    ) -> None:
        self._events = events
        self._sqs = sqs
        self._account_id = account_id
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-router", daemon=True)
        self.taps = [
            self._tap(function, name, source, handlers[logical])
            for logical, function in functions.items()
            for name, source in function.events.items()
            if source.get("Type") == "EventBridgeRule"
        ]
        self.invocations = 0
        self.dead_lettered = 0

    def _tap(
        self, function: ProvisionedFunction, name: str, source: Mapping[str, Any], handler: Callable[[Any, Any], Any]
    ) -> _Tap:
        properties = source.get("Properties", {})
        bus = properties.get("EventBusName") or "default"
        rule = f"{function.logical_id}-{name}"[:64]
        queue_url = self._sqs.create_queue(QueueName=f"event-tap-{rule}"[:80])["QueueUrl"]
        queue_arn = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(properties["Pattern"]))
        self._events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "function", "Arn": queue_arn}])
        return _Tap(rule=rule, queue_url=queue_url, function=function, handler=handler)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def deliver_pending(self) -> int:
        """Invoke the functions for every event waiting in a tap; how many were delivered."""
        delivered = 0
        for tap in self.taps:
            received = self._sqs.receive_message(QueueUrl=tap.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            for message in received.get("Messages") or []:
                self._invoke(tap, message["Body"])
                self._sqs.delete_message(QueueUrl=tap.queue_url, ReceiptHandle=message["ReceiptHandle"])
                delivered += 1
        return delivered

    def _invoke(self, tap: _Tap, body: str) -> None:
        event = json.loads(body)
        # EventBridge always names the account an event was put in; moto's SQS delivery leaves it out.
        event.setdefault("account", self._account_id)
        context = LocalLambdaContext(
            function_name=tap.function.name,
            function_arn=tap.function.arn,
            memory_limit_in_mb=tap.function.memory_size,
            timeout_seconds=tap.function.timeout,
        )
        error: Exception | None = None
        for _ in range(1 + tap.function.async_retries):
            self.invocations += 1
            try:
                tap.handler(event, context)
                return
            except Exception as exc:  # Lambda retries an asynchronous invocation that raised
                error = exc
        self._dead_letter(tap, body, error)

    def _dead_letter(self, tap: _Tap, body: str, error: Exception | None) -> None:
        self.dead_lettered += 1
        arn = tap.function.dead_letter_arn
        if not arn:
            log.error("event for %s dropped after retries (no DeadLetterQueue): %s", tap.function.logical_id, error)
            return
        queue_url = self._sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
        self._sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=body,
            MessageAttributes={
                "RequestID": {"DataType": "String", "StringValue": "local"},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {"DataType": "String", "StringValue": f"{type(error).__name__}: {error}"[:1000]},
            },
        )

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                if not self.deliver_pending():
                    self._stopping.wait(0.05)
            except Exception:  # keep routing as EventBridge does; the server may be restarting
                log.exception("routing bus events failed; retrying")
                self._stopping.wait(0.5)
