"""The one place an authenticated delivery's body becomes a CiEvent or a clear refusal.

Every provider's `parse` runs here, so whatever a body holds (wrong JSON types, lone surrogates,
5000-digit numbers, 100k-deep nesting, megabytes in one field) ends as `InvalidPayload` with a reason,
never as an unhandled exception (a 500 that GitHub and GitLab count against the hook).
"""

from __future__ import annotations

from collections.abc import Mapping

from testrelay.ci.base import CiProvider, Ignored
from testrelay.errors import InvalidPayload
from testrelay.models.ci_event import CiEvent, InvalidEvent

# API Gateway and Lambda refuse larger requests before testrelay sees them (6 MB invoke payload,
# base64 included); the limit also holds for the local runtime. README "Webhook limits".
MAX_BODY_BYTES = 4 * 1024 * 1024
# Reasons may quote what the CI sent (an event name, a status): a bounded, printable quote.
MAX_REASON = 300


def parse_delivery(provider: CiProvider, headers: Mapping[str, str], body: bytes) -> CiEvent | Ignored:
    if len(body) > MAX_BODY_BYTES:
        raise InvalidPayload(f"body is {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted")
    try:
        parsed = provider.parse(headers, body)
    except InvalidEvent as exc:
        # Field names and the rule broken only: the offending value is never echoed back.
        raise InvalidPayload(f"body does not give a usable event: {exc}") from exc
    except RecursionError as exc:
        raise InvalidPayload("body is not accepted: JSON nested too deeply") from exc
    if isinstance(parsed, Ignored):
        return Ignored(reason=printable(parsed.reason), event=printable(parsed.event))
    return parsed


def printable(value: str) -> str:
    """`value` clipped to MAX_REASON characters, lone surrogates escaped, safe to log and answer."""
    clipped = value if len(value) <= MAX_REASON else value[: MAX_REASON - 1] + "…"
    return clipped.encode("utf-8", "backslashreplace").decode("utf-8")
