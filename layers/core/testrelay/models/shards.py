"""What a report of a sharded CI run says about itself: the run key it shares with the other shards,
its place (`3/8`: shard 3 of 8), its attempt; and the record of the shards gathered so far."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MAX_SHARDS = 1000
MAX_ATTEMPT = 1000
# CI run ids are plain (GitHub's run id, GitLab's pipeline id, a CircleCI workflow UUID, Jenkins'
# BUILD_TAG); anything printable is taken, but not a line break: the signed shard line is line-based.
RUN_KEY = re.compile(r"[^\x00-\x1f\x7f]{1,200}")
_SHARD = re.compile(r"\s*([0-9]{1,4})\s*(?:/\s*([0-9]{1,4})\s*)?")


def _encodable(text: str) -> bool:
    # JSON may carry a lone surrogate ("\ud800"); it could never be stored or signed.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class ShardRefused(ValueError):
    """A shard label that cannot be taken; the message says what is wrong and what to send."""


def parse_shard(text: str) -> tuple[int, int | None]:
    """`3/8` -> (3, 8), `3` -> (3, None). Shards count from 1, as CI matrices do (CircleCI's
    CIRCLE_NODE_INDEX counts from 0: send CIRCLE_NODE_INDEX+1)."""
    matched = _SHARD.fullmatch(text)
    if not matched:
        raise ShardRefused(f"shard {text[:40]!r} is not i/n (e.g. 3/8) or i: say which shard of how many this is")
    index, count = int(matched.group(1)), (int(matched.group(2)) if matched.group(2) else None)
    if count is not None and not 1 <= count <= MAX_SHARDS:
        raise ShardRefused(f"shard count {count} is outside 1..{MAX_SHARDS}")
    if not 1 <= index <= (count or MAX_SHARDS):
        raise ShardRefused(f"shard {text.strip()!r}: the index counts from 1 and is at most the count")
    return index, count


class ShardLabel(BaseModel):
    """One report's place in its CI run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_key: str = Field(pattern=f"^{RUN_KEY.pattern}$")
    index: int | None = Field(default=None, ge=1, le=MAX_SHARDS)
    count: int | None = Field(default=None, ge=1, le=MAX_SHARDS)
    attempt: int = Field(default=1, ge=1, le=MAX_ATTEMPT)

    @classmethod
    def of(cls, run_key: Any, shard: Any = None, attempt: Any = None) -> ShardLabel:
        """From the values a request carries (strings, or JSON values of a completion body)."""
        if not isinstance(run_key, str) or not RUN_KEY.fullmatch(run_key) or not _encodable(run_key):
            raise ShardRefused(
                "run_key must be 1 to 200 printable characters, without line breaks (e.g. the CI run id)"
            )
        index = count = None
        if shard is not None and shard != "":
            if not isinstance(shard, str | int) or isinstance(shard, bool):
                raise ShardRefused("shard must be a string like 3/8")
            index, count = parse_shard(str(shard))
        number = 1
        if attempt is not None and attempt != "":
            text = str(attempt).strip() if isinstance(attempt, str | int) and not isinstance(attempt, bool) else ""
            if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_ATTEMPT:
                raise ShardRefused(
                    f"attempt must be a whole number from 1 to {MAX_ATTEMPT} (e.g. the CI's run attempt)"
                )
            number = int(text)
        return cls(run_key=run_key, index=index, count=count, attempt=number)

    @property
    def shard(self) -> str:
        """How the shard reads in answers: `3/8`, `3`, or `-` (a report without an index)."""
        if self.index is None:
            return "-"
        return f"{self.index}/{self.count}" if self.count else str(self.index)

    def slot(self, identity: str) -> str:
        """Where the report sits among the run's shards: its index (or, without one, its own identity:
        its bytes' digest or its upload) and its attempt. The same slot sent again replaces itself."""
        place = f"i{self.index}" if self.index is not None else f"r{identity[:24]}"
        return f"{place}-a{self.attempt}"

    def signed_line(self) -> bytes:
        """What the signature covers before the body of a report sent in the request: the run key, the
        shard and the attempt as sent, one per line, so they cannot be changed without the secret."""
        shard = self.shard if self.index is not None else ""
        return f"{self.run_key}\n{shard}\n{self.attempt}\n".encode()
