"""Points in time an operator types: `--since 24h`, `--since 2026-12-01`, `--since 2026-12-01T08:00+01:00`."""

from __future__ import annotations

import argparse
import re
import time
from datetime import UTC, datetime

_AGO = re.compile(r"(\d{1,6})([mhd])")
_SECONDS = {"m": 60, "h": 3600, "d": 86400}


def moment(value: str, now: float | None = None) -> float:
    """Epoch seconds of a duration ago (`30m`, `24h`, `7d`) or an ISO 8601 date or time (UTC unless it
    names its offset); an argparse error naming the forms otherwise."""
    text = value.strip()
    ago = _AGO.fullmatch(text)
    if ago:
        return (time.time() if now is None else now) - int(ago.group(1)) * _SECONDS[ago.group(2)]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a time: give a duration ago (30m, 24h, 7d) or an ISO 8601 date or time "
            "(2026-12-01, 2026-12-01T08:00Z)"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
