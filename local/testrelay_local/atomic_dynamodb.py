"""DynamoDB's single-item atomicity for moto 5.2.5.

Real DynamoDB evaluates a condition and applies an update as one step per item. moto's backend
(``moto.dynamodb.models.DynamoDBBackend``) reads the item, checks the condition and writes it back
with no lock, so two threads of the server (or of an in-process mock) can both pass a condition only
one of them should pass. The rate budget's conditional counters depend on that atomicity, so the
local runtime and the tests serialise every item write and read through one lock, as the service
does per item.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from moto.dynamodb.models import DynamoDBBackend

_METHODS = ("put_item", "get_item", "update_item", "delete_item", "transact_write_items")
_LOCK = threading.RLock()


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)

    return call


@contextmanager
def atomic_items() -> Iterator[None]:
    with ExitStack() as patches:
        for name in _METHODS:
            original = getattr(DynamoDBBackend, name)
            patches.enter_context(mock.patch.object(DynamoDBBackend, name, _serialised(original)))
        yield
