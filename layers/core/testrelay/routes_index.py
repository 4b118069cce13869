"""The routes as the webhook reads them: the routes file's index, validated when it was written.

Validating the routes file takes its pydantic models (~0.3 s of a cold start, more than enqueueing
itself); the webhook needs only each route's match rules and the action it copies into a job. So
`testrelay routes index` (run by `make build` and the local runtime) validates the file and writes
`<name>.index.json` beside it, holding those and the SHA-256 of the file's bytes. The webhook uses
the index only when that digest matches the file it is configured with; a missing, stale or
unreadable index falls back to validating the file here (correct, only slower) with one warning.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testrelay.errors import ConfigurationError
from testrelay.observability import logger

INDEX_FORMAT = 1
_RULE_LISTS = ("providers", "events", "repositories", "branches", "workflows", "outcomes", "tags")


@dataclass(frozen=True)
class IndexedMatch:
    providers: tuple[str, ...]
    events: tuple[str, ...]
    repositories: tuple[str, ...]
    branches: tuple[str, ...]
    workflows: tuple[str, ...]
    outcomes: tuple[str, ...]
    tags: tuple[str, ...]
    forks: bool
    child_pipelines: bool


@dataclass(frozen=True)
class IndexedRoute:
    name: str
    match: IndexedMatch
    action: dict[str, Any]
    """The route's action as a job carries it (RouteAction's JSON form)."""


_cache: dict[Path, tuple[float, tuple[IndexedRoute, ...]]] = {}


def index_path(routes_file: str | os.PathLike[str]) -> Path:
    return Path(routes_file).with_suffix(".index.json")


def digest(source: bytes) -> str:
    return hashlib.sha256(source).hexdigest()


def load_indexed_routes(routes_file: str | os.PathLike[str]) -> tuple[IndexedRoute, ...]:
    """The file's routes in order, from its index when the index is of these bytes."""
    file = Path(routes_file)
    try:
        mtime = file.stat().st_mtime
        cached = _cache.get(file)
        if cached and cached[0] == mtime:
            return cached[1]
        source = file.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"routes file {file} cannot be read: {exc.strerror}") from exc
    routes = _from_index(index_path(file), digest(source))
    if routes is None:
        from testrelay.routing import index_document, parse_routes

        text = source.decode("utf-8", "replace")
        routes = routes_of(index_document(parse_routes(text, source=str(file)), digest(source)))
    _cache[file] = (mtime, routes)
    return routes


def _from_index(path: Path, source_digest: str) -> tuple[IndexedRoute, ...] | None:
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        logger.warning("routes index missing: routes file validated at cold start", index=str(path))
        return None
    except (OSError, ValueError) as exc:
        logger.warning("routes index unreadable: routes file validated at cold start", index=str(path), error=str(exc))
        return None
    if not isinstance(document, dict) or document.get("format") != INDEX_FORMAT:
        logger.warning("routes index of another format: routes file validated at cold start", index=str(path))
        return None
    if document.get("source_sha256") != source_digest:
        logger.warning("routes index stale (the routes file changed): validated at cold start", index=str(path))
        return None
    try:
        return routes_of(document)
    except (KeyError, TypeError, ValueError) as exc:
        logger.warning("routes index malformed: routes file validated at cold start", index=str(path), error=str(exc))
        return None


def routes_of(document: dict[str, Any]) -> tuple[IndexedRoute, ...]:
    routes = []
    for entry in document["routes"]:
        match = entry["match"]
        lists = {name: tuple(str(pattern) for pattern in match[name]) for name in _RULE_LISTS}
        rules = IndexedMatch(**lists, forks=bool(match["forks"]), child_pipelines=bool(match["child_pipelines"]))
        if not isinstance(entry["action"], dict):
            raise TypeError("a route's action must be an object")
        routes.append(IndexedRoute(name=str(entry["name"]), match=rules, action=entry["action"]))
    return tuple(routes)
