"""Helpers shared by tests of every layer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"
EVENTS = ROOT / "events"


def github_fixture(name: str) -> bytes:
    """The vendor-published payload, byte for byte (signatures cover the raw bytes)."""
    return (EVENTS / "github" / name).read_bytes()


@dataclass
class FakeLambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 30_000
