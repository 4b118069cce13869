"""The provider-neutral description of "a CI run finished" that routes match on.

A frozen dataclass that checks itself (not a pydantic model): every webhook delivery builds one on
the function's cold path, which imports no pydantic (README "Cold start"). Its rules are pydantic's
lax ones for these types, so a job that carries it validates the same in the dispatcher (pydantic
builds the dataclass through `__init__`, hence through these checks); `tests/unit/test_ci_event.py`
holds the two to the same answers."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

from testrelay.errors import InvalidPayload

# Limits of a normalised field (README "Webhook limits"): far above what any CI sends (Git refs and
# GitHub/GitLab names stop at 255 bytes), low enough that a job message stays far below SQS's 256 KiB.
MAX_TEXT = 1024
MAX_URL = 4096
MAX_INT = 2**63 - 1  # DynamoDB and the vendors' APIs take 64-bit integers at most

_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+(?:_[0-9]+)*(?:\.0+)?")
# Unicode's White_Space, which pydantic trims around an integer (str.strip would also take \x1c-\x1f).
_WHITE_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
_TRUE = frozenset({"1", "on", "t", "true", "y", "yes"})
_FALSE = frozenset({"0", "off", "f", "false", "n", "no"})


class InvalidEvent(InvalidPayload):
    """Fields that do not make a usable event; the message names each field and what is wrong, never
    the value."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {problem}" for name, problem in problems))
        self.problems = problems


def _text(value: Any, max_length: int, min_length: int = 0) -> str:
    if isinstance(value, bytes | bytearray):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("Input should be a valid string, unable to parse raw data as a unicode string") from None
    if not isinstance(value, str):
        raise ValueError("Input should be a valid string")
    try:
        # json.loads accepts a lone surrogate ("\ud800"); the job's JSON on the queue could not carry it.
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains a lone UTF-16 surrogate, which is not text") from None
    if len(value) < min_length:
        raise ValueError(f"String should have at least {min_length} character{'s' if min_length > 1 else ''}")
    if len(value) > max_length:
        raise ValueError(f"String should have at most {max_length} characters")
    return value


def _integer(value: Any, low: int, high: int) -> int:
    if isinstance(value, bool):
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("Input should be a finite number")
        if not value.is_integer():
            raise ValueError("Input should be a valid integer, got a number with a fractional part")
        number = int(value)
    elif isinstance(value, str):
        digits = value.strip(_WHITE_SPACE)
        if not _INTEGER_TEXT.fullmatch(digits) or len(digits) > 4300:
            raise ValueError("Input should be a valid integer, unable to parse string as an integer")
        number = int(digits.partition(".")[0].replace("_", ""))
    else:
        raise ValueError("Input should be a valid integer")
    if number < low:
        raise ValueError(f"Input should be greater than or equal to {low}")
    if number > high:
        raise ValueError(f"Input should be less than or equal to {high}")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise ValueError("Input should be a valid boolean, unable to interpret input")


@dataclass(frozen=True, slots=True)
class CiEvent:
    provider: str  # CI provider key, e.g. 'github'
    event: str  # provider event name, e.g. 'workflow_run'
    delivery_key: str  # the provider's dedupe key (a Jenkins build URL, say)
    repository: str  # owner/name or the provider's project path
    branch: str | None = None  # None for tag builds (see `tag`)
    tag: str | None = None  # the tag a tag build ran for
    pull_request: str | None = None  # the pull/merge request number the run was for
    fork: bool = False  # the run's code comes from a fork of `repository`
    head_repository: str | None = None  # where a fork's code comes from
    child_pipeline: bool = False  # a pipeline started by another pipeline of the same commit (GitLab)
    commit_sha: str | None = None
    pipeline_id: str | None = None
    pipeline_name: str = ""
    run_number: int | None = None
    run_url: str | None = None
    outcome: str | None = None  # success, failure, cancelled, skipped, ...
    testsigma_run_id: int | None = None  # a Testsigma run the CI already started: sync it instead of triggering

    def __post_init__(self) -> None:
        problems: list[tuple[str, str]] = []
        for name, check in _CHECKS.items():
            value = getattr(self, name)
            if value is None and name in _OPTIONAL:
                continue
            try:
                checked = check(value)
            except ValueError as exc:
                problems.append((name, str(exc)))
                continue
            if checked is not value:
                object.__setattr__(self, name, checked)
        if problems:
            raise InvalidEvent(problems)

    @property
    def short_sha(self) -> str:
        return (self.commit_sha or "")[:7]

    def as_json(self) -> dict[str, Any]:
        """The event as its job message carries it (what pydantic's dump of the dataclass gives)."""
        return {name: getattr(self, name) for name in _NAMES}


def _text_of(max_length: int, min_length: int = 0) -> Any:
    return lambda value: _text(value, max_length, min_length)


_CHECKS: dict[str, Any] = {
    "provider": _text_of(MAX_TEXT),
    "event": _text_of(MAX_TEXT),
    "delivery_key": _text_of(MAX_URL, 1),
    "repository": _text_of(MAX_TEXT, 1),
    "branch": _text_of(MAX_TEXT),
    "tag": _text_of(MAX_TEXT),
    "pull_request": _text_of(MAX_TEXT),
    "fork": _boolean,
    "head_repository": _text_of(MAX_TEXT),
    "child_pipeline": _boolean,
    "commit_sha": _text_of(MAX_TEXT),
    "pipeline_id": _text_of(MAX_TEXT),
    "pipeline_name": _text_of(MAX_TEXT),
    "run_number": lambda value: _integer(value, -MAX_INT, MAX_INT),
    "run_url": _text_of(MAX_URL),
    "outcome": _text_of(MAX_TEXT),
    "testsigma_run_id": lambda value: _integer(value, 1, MAX_INT),
}
_OPTIONAL = frozenset(f.name for f in fields(CiEvent) if f.default is None)
_NAMES = tuple(f.name for f in fields(CiEvent))
