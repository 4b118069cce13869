"""Helpers shared by tests of every layer."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures"
EVENTS = ROOT / "events"


def github_fixture(name: str) -> bytes:
    """The vendor-published payload, byte for byte (signatures cover the raw bytes)."""
    return (EVENTS / "github" / name).read_bytes()
