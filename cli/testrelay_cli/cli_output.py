"""How every command answers: one answer on stdout (JSON under --json), progress kept off it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """The command's one answer on stdout: JSON under --json, else text."""
    print(json.dumps(data, indent=2, default=str) if args.json else text)


def note(args: argparse.Namespace, line: str) -> None:
    """A progress line: stdout for a person, stderr under --json so stdout stays one JSON document."""
    print(line, file=sys.stderr if args.json else sys.stdout, flush=True)


def readable(path: Path) -> Path:
    """Fails now, naming the path, rather than after a connection was made."""
    with path.open("rb"):
        return path
