"""Loading the routes file and matching CI events against it."""

from __future__ import annotations

import os
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from testrelay.errors import ConfigurationError
from testrelay.models.ci_event import CiEvent
from testrelay.models.routes import Route, RoutesConfig

_cache: dict[Path, tuple[float, RoutesConfig]] = {}


def parse_routes(text: str, source: str = "routes file") -> RoutesConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{source} is not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{source}: the top level must be a mapping with a 'routes' list")
    try:
        return RoutesConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigurationError(f"{source} is invalid:\n" + _describe(exc, raw)) from exc


def load_routes(path: str | os.PathLike[str]) -> RoutesConfig:
    """Parse and validate the routes file, re-reading it only when it changes on disk."""
    file = Path(path)
    try:
        mtime = file.stat().st_mtime
    except OSError as exc:
        raise ConfigurationError(f"routes file {file} cannot be read: {exc.strerror}") from exc
    cached = _cache.get(file)
    if cached and cached[0] == mtime:
        return cached[1]
    config = parse_routes(file.read_text(encoding="utf-8"), source=str(file))
    _cache[file] = (mtime, config)
    return config


def _describe(exc: ValidationError, raw: dict[str, Any]) -> str:
    """One line per problem, naming the route (by name when it has one) and the key."""
    routes_value = raw.get("routes")
    routes: list[Any] = routes_value if isinstance(routes_value, list) else []
    lines = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = ""
        if len(loc) >= 2 and loc[0] == "routes" and isinstance(loc[1], int):
            index = loc[1]
            entry = routes[index] if index < len(routes) else None
            name = entry.get("name") if isinstance(entry, dict) else None
            where = f"route {name!r} (routes[{index}])" if name else f"routes[{index}]"
            loc = loc[2:]
        key = ".".join(str(part) for part in loc if not str(part).startswith("function-"))
        subject = " ".join(part for part in (where, f"key {key!r}" if key else "") if part) or "top level"
        lines.append(f"  - {subject}: {error['msg']}")
    return "\n".join(lines)


def _matches_any(patterns: list[str], value: str | None) -> bool:
    if not patterns:
        return True
    candidate = value or ""
    return any(fnmatchcase(candidate, pattern) for pattern in patterns)


def mismatch(route: Route, event: CiEvent) -> str | None:
    """Why `route` does not want `event`, or None when it does."""
    if event.fork and not route.match.forks:
        return f"code from fork {event.head_repository or '(unnamed)'!r} (set match.forks: true to run for forks)"
    if event.child_pipeline and not route.match.child_pipelines:
        return "child pipeline of a pipeline for the same commit (set match.child_pipelines: true to run for it)"
    checks = (
        ("provider", route.match.providers, event.provider),
        ("event", route.match.events, event.event),
        ("repository", route.match.repositories, event.repository),
        ("branch", route.match.branches, event.branch),
        ("tag", route.match.tags, event.tag),
        ("workflow", route.match.workflows, event.pipeline_name),
        ("outcome", route.match.outcomes, event.outcome),
    )
    for label, patterns, value in checks:
        if not _matches_any(patterns, value):
            return f"{label} {value!r} not in {patterns}"
    return None


def match_routes(config: RoutesConfig, event: CiEvent) -> tuple[list[Route], list[str]]:
    """The routes that want the event, and for the others the reason they do not."""
    matched: list[Route] = []
    reasons: list[str] = []
    for route in config.routes:
        reason = mismatch(route, event)
        if reason is None:
            matched.append(route)
        else:
            reasons.append(f"route {route.name!r}: {reason}")
    return matched, reasons
